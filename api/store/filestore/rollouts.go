package filestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// Rollouts live in <dir>/rollouts: <id>.json is the record (written
// atomically), <id>.log its log, one JSON LogLine a line, appended and
// fsynced a batch at a time. A crash in the middle of an append leaves a
// partial last line, which is cut off (with a warning) the first time the
// log is used after Open, and is never read as a line.
//
// The rules are those of storetest.RunRollouts: IDs are checked with
// store.CheckRolloutID (so an ID is always a safe file name), strings of
// records and log lines are kept as store.ValidText returns them, and the
// Seq values of a batch must be > 0, strictly increasing and above those
// stored.
//
// Records are held in memory (guarded by Store.rmu). Each log has its own
// lock, held while a batch is written and fsynced, so appends to different
// rollouts run in parallel and never wait for each other's fsync. Readers
// take that lock only to learn how many bytes of the file are complete
// lines, and read the file without it. A sparse in-memory index (the offset
// of a line about every logIndexStep bytes, with its Seq) lets Logs start
// near the first line it returns instead of at the top of the file.

var _ store.Rollouts = (*Store)(nil)

const (
	rolloutsDir = "rollouts"
	rolloutExt  = ".json"
	logExt      = ".log"

	// logIndexStep is how many bytes of log lie between two index marks:
	// Logs reads at most about this much before the first line it returns.
	logIndexStep = 4 << 10
)

func (s *Store) rolloutPath(id string) string {
	return filepath.Join(s.dir, rolloutsDir, id+rolloutExt)
}

func (s *Store) logPath(id string) string { return filepath.Join(s.dir, rolloutsDir, id+logExt) }

// cleanRollout returns a deep copy of r whose strings are what
// store.ValidText returns, and its indented JSON for the record file.
func cleanRollout(r *api.Rollout) (*api.Rollout, []byte, error) {
	b, err := json.Marshal(r) // writes invalid UTF-8 as U+FFFD, byte by byte
	if err != nil {
		return nil, nil, fmt.Errorf("filestore: marshal rollout %s: %w", r.ID, err)
	}
	b = store.ReplaceJSONNul(b)
	var out api.Rollout
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, fmt.Errorf("filestore: copy rollout %s: %w", r.ID, err)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, "", "  "); err != nil {
		return nil, nil, fmt.Errorf("filestore: indent rollout %s: %w", r.ID, err)
	}
	ind.WriteByte('\n')
	return &out, ind.Bytes(), nil
}

func copyRollout(r *api.Rollout) *api.Rollout {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("filestore: marshal rollout: %v", err))
	}
	var out api.Rollout
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("filestore: copy rollout: %v", err))
	}
	return &out
}

// rolloutLog is what the store knows of a rollout's log file.
type rolloutLog struct {
	mu      sync.Mutex // serialises appends; guards the fields below
	checked bool       // the file was checked for a torn line, the fields below are set
	lastSeq int64      // the largest Seq in the file
	size    int64      // bytes of complete lines: readers read no further
	marks   []logMark  // increasing offsets, about logIndexStep apart
	closed  bool       // set by Store.Close once no write runs
	deleted bool       // set by DeleteRollout: the log is gone, writes and reads fail
}

// logMark says that the line starting at off has Seq seq (every line
// before it has a smaller one).
type logMark struct {
	seq, off int64
}

// addMark records the line at off with Seq seq if it lies far enough past
// the last mark.
func (l *rolloutLog) addMark(seq, off int64) {
	last := int64(0)
	if n := len(l.marks); n > 0 {
		last = l.marks[n-1].off
	}
	if off-last >= logIndexStep {
		l.marks = append(l.marks, logMark{seq: seq, off: off})
	}
}

// loadRollouts reads every rollout record. Logs are read when used.
func (s *Store) loadRollouts() error {
	dir := filepath.Join(s.dir, rolloutsDir)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := removeTemps(dir); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	var corrupt []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), rolloutExt)
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if store.CheckRolloutID(id) != nil {
			// Not a name the store writes (nor could serve): leave it.
			s.log.Warn("filestore: ignoring a rollout file whose name is not a rollout id", "file", path)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		var r api.Rollout
		if err = json.Unmarshal(data, &r); err == nil && r.ID != id {
			err = fmt.Errorf("id is %q, but the file is named %s", r.ID, e.Name())
		}
		if err != nil {
			corrupt = append(corrupt, path+": "+err.Error())
			continue
		}
		s.rollouts[id] = &r
	}
	if len(corrupt) > 0 {
		return fmt.Errorf("filestore: open %s: %w: %s", s.dir, store.ErrCorrupt, strings.Join(corrupt, "; "))
	}
	return nil
}

// CreateRollout implements store.Rollouts.
func (s *Store) CreateRollout(ctx context.Context, r *api.Rollout) error {
	if r == nil {
		return fmt.Errorf("%w: no rollout", store.ErrInvalid)
	}
	if err := store.CheckRolloutID(r.ID); err != nil {
		return err
	}
	if msg := api.ValidateName(r.Deployment); msg != "" {
		return fmt.Errorf("%w: rollout %s: deployment: %s", store.ErrInvalid, r.ID, msg)
	}
	if s.closed.Load() {
		return errClosed
	}
	c, data, err := cleanRollout(r)
	if err != nil {
		return err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, ok := s.rollouts[r.ID]; ok {
		return fmt.Errorf("rollout %q: %w", r.ID, store.ErrAlreadyExists)
	}
	return s.writeRollout(c, data)
}

// UpdateRollout implements store.Rollouts. A nil Spec keeps the stored
// one.
func (s *Store) UpdateRollout(ctx context.Context, r *api.Rollout) error {
	if r == nil {
		return fmt.Errorf("%w: no rollout", store.ErrInvalid)
	}
	if err := store.CheckRolloutID(r.ID); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	c, data, err := cleanRollout(r)
	if err != nil {
		return err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	old, ok := s.rollouts[r.ID]
	if !ok {
		return fmt.Errorf("rollout %q: %w", r.ID, store.ErrNotFound)
	}
	if r.Deployment != old.Deployment {
		return fmt.Errorf("%w: rollout %s belongs to deployment %s, not %s", store.ErrInvalid, r.ID, old.Deployment, r.Deployment)
	}
	if c.Spec == nil && old.Spec != nil {
		// A record read from ListRollouts (which leaves specs out).
		c.Spec = old.Spec
		if _, data, err = cleanRollout(c); err != nil {
			return err
		}
	}
	return s.writeRollout(c, data)
}

// writeRollout stores c (the store's own copy) and its file data. The
// caller holds rmu.
func (s *Store) writeRollout(c *api.Rollout, data []byte) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := writeAtomic(s.rolloutPath(c.ID), data, statePerm); err != nil {
		return fmt.Errorf("filestore: write rollout %s: %w", c.ID, err)
	}
	s.rollouts[c.ID] = c
	return nil
}

// GetRollout implements store.Rollouts.
func (s *Store) GetRollout(ctx context.Context, id string) (*api.Rollout, error) {
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	r, ok := s.rollouts[id]
	if !ok {
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	return copyRollout(r), nil
}

// ListRollouts implements store.Rollouts: highest Revision first, then
// latest CreatedAt (whole seconds; nil is the oldest), then ID descending;
// the records without their specs.
func (s *Store) ListRollouts(ctx context.Context, deployment string, limit int) ([]*api.Rollout, error) {
	if msg := api.ValidateName(deployment); msg != "" {
		return nil, fmt.Errorf("%w: deployment: %s", store.ErrInvalid, msg)
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	out := []*api.Rollout{}
	for _, r := range s.rollouts {
		if r.Deployment == deployment {
			out = append(out, r)
		}
	}
	// cmpCreated compares creation times in whole seconds, nil first.
	cmpCreated := func(a, b *api.Time) int {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		case b == nil:
			return 1
		}
		ua, ub := a.Unix(), b.Unix()
		switch {
		case ua < ub:
			return -1
		case ua > ub:
			return 1
		}
		return 0
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Revision != b.Revision {
			return a.Revision > b.Revision
		}
		if c := cmpCreated(a.CreatedAt, b.CreatedAt); c != 0 {
			return c > 0
		}
		return a.ID > b.ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i, r := range out {
		bare := *r
		bare.Spec = nil
		out[i] = copyRollout(&bare)
	}
	return out, nil
}

// rolloutLogFor returns the log state of a stored rollout, or ErrNotFound.
func (s *Store) rolloutLogFor(id string) (*rolloutLog, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, ok := s.rollouts[id]; !ok {
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	l := s.logs[id]
	if l == nil {
		l = &rolloutLog{}
		s.logs[id] = l
	}
	return l, nil
}

// AppendLogs implements store.Rollouts. The Seq values of lines must be
// > 0, strictly increasing and above those already stored (else
// ErrInvalid, and nothing is appended). Node, Stream and Text are kept as
// store.ValidText returns them. The batch is one write and one fsync of
// the rollout's log file.
func (s *Store) AppendLogs(ctx context.Context, id string, lines []api.LogLine) error {
	if err := store.CheckRolloutID(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	if len(lines) == 0 {
		return nil
	}
	// Check and encode the batch before taking any lock.
	buf := make([]byte, 0, len(lines)*128)
	offs := make([]int, len(lines)) // where each line starts in buf
	prev := int64(0)
	for i, line := range lines {
		if line.Seq <= prev {
			if i == 0 {
				return fmt.Errorf("%w: rollout %s: log line seq %d: must be > 0", store.ErrInvalid, id, line.Seq)
			}
			return fmt.Errorf("%w: rollout %s: log line seq %d does not follow %d", store.ErrInvalid, id, line.Seq, prev)
		}
		prev = line.Seq
		line.Node = store.ValidText(line.Node)
		line.Stream = store.ValidText(line.Stream)
		line.Text = store.ValidText(line.Text)
		offs[i] = len(buf)
		buf = appendLogLine(buf, &line)
		buf = append(buf, '\n')
	}

	l, err := s.rolloutLogFor(id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deleted {
		return fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	if err := s.checkLog(id, l); err != nil {
		return err
	}
	if first := lines[0].Seq; first <= l.lastSeq {
		return fmt.Errorf("%w: rollout %s: log line seq %d does not follow %d, the last one stored", store.ErrInvalid, id, first, l.lastSeq)
	}
	if s.closed.Load() {
		return errClosed
	}
	f, err := os.OpenFile(s.logPath(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, statePerm)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// The file may now end in part of the batch: cut it back to the
		// lines stored before, or have the next use check it again.
		if terr := f.Truncate(l.size); terr != nil {
			l.checked = false
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filestore: append log of rollout %s: %w", id, err)
	}
	for i, line := range lines {
		l.addMark(line.Seq, l.size+int64(offs[i]))
	}
	l.size += int64(len(buf))
	l.lastSeq = prev
	return nil
}

// appendLogLine appends the JSON of l, byte for byte what json.Marshal
// writes (TestAppendLogLine compares them), without reflection: it is
// most of the cost of storing a log line.
func appendLogLine(dst []byte, l *api.LogLine) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, l.Seq, 10)
	if l.Node != "" {
		dst = append(dst, `,"node":`...)
		dst = appendJSONString(dst, l.Node)
	}
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, l.Stream)
	dst = append(dst, `,"time":`...)
	if l.Time == nil || l.Time.IsZero() {
		dst = append(dst, "null"...)
	} else {
		// api.Time: RFC 3339 in UTC, whose characters need no escaping.
		dst = append(dst, '"')
		dst = l.Time.UTC().AppendFormat(dst, time.RFC3339)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, l.Text)
	return append(dst, '}')
}

// appendJSONString appends s as encoding/json writes a string (HTML
// characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// checkLog makes sure l describes the log file of rollout id: the first
// time, it cuts a torn last line off the file and reads its lines for the
// largest Seq and the index. The caller holds l.mu.
func (s *Store) checkLog(id string, l *rolloutLog) error {
	if l.checked {
		return nil
	}
	path := s.logPath(id)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		keep := bytes.LastIndexByte(data, '\n') + 1
		s.log.Warn("filestore: cutting a torn last line off a rollout log", "file", path, "bytes", n-keep)
		if err := os.Truncate(path, int64(keep)); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		data = data[:keep]
	}
	var last int64
	l.marks = l.marks[:0]
	for off := 0; off < len(data); {
		end := off + bytes.IndexByte(data[off:], '\n') + 1
		seq, err := lineSeq(data[off:end])
		if err != nil {
			return fmt.Errorf("%s: line at byte %d: %w", path, off, err)
		}
		l.addMark(seq, int64(off))
		last = max(last, seq)
		off = end
	}
	l.checked, l.lastSeq, l.size = true, last, int64(len(data))
	return nil
}

// lineSeq returns the Seq of a log line, reading only its start when it
// has the shape json.Marshal gives it.
func lineSeq(b []byte) (int64, error) {
	const prefix = `{"seq":`
	if rest, ok := bytes.CutPrefix(b, []byte(prefix)); ok {
		if i := bytes.IndexByte(rest, ','); i > 0 {
			if seq, err := strconv.ParseInt(string(rest[:i]), 10, 64); err == nil {
				return seq, nil
			}
		}
	}
	var l api.LogLine
	if err := json.Unmarshal(b, &l); err != nil {
		return 0, fmt.Errorf("%w: rollout log: %v", store.ErrCorrupt, err)
	}
	return l.Seq, nil
}

// Logs implements store.Rollouts.
func (s *Store) Logs(ctx context.Context, id string, after int64, limit int) ([]api.LogLine, error) {
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	l, err := s.rolloutLogFor(id)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.deleted {
		l.mu.Unlock()
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	if err := s.checkLog(id, l); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	size, lastSeq := l.size, l.lastSeq
	// Start at the last mark whose line (and so every line before it) has
	// Seq <= after+1: the lines before it are all <= after.
	var start int64
	if i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i].seq > after }); i > 0 {
		start = l.marks[i-1].off
	}
	l.mu.Unlock()

	out := []api.LogLine{}
	if size == 0 || after >= lastSeq {
		return out, nil
	}
	f, err := os.Open(s.logPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted since the lock was released.
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	// Only the complete lines known under l.mu: an append in flight writes
	// past size.
	br := bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 64<<10)
	for limit <= 0 || len(out) < limit {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: collect it whole (b is
			// overwritten by the next read, so copy it first).
			head := append([]byte(nil), b...)
			rest, rerr := br.ReadBytes('\n')
			b, err = append(head, rest...), rerr
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			seq, serr := lineSeq(b)
			if serr != nil {
				return nil, fmt.Errorf("%s: %w", s.logPath(id), serr)
			}
			if seq > after {
				var line api.LogLine
				if jerr := json.Unmarshal(b, &line); jerr != nil {
					return nil, fmt.Errorf("%s: %w: rollout log: %v", s.logPath(id), store.ErrCorrupt, jerr)
				}
				out = append(out, line)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("filestore: read log of rollout %s: %w", id, err)
		}
	}
	return out, nil
}

// DeleteRollout implements store.Rollouts. The log file goes first, then
// the record: a crash in between leaves a record with an empty log, which
// a later delete removes, never a log without its record. An append or a
// read waiting for the log's lock fails with ErrNotFound once it gets it.
func (s *Store) DeleteRollout(ctx context.Context, id string) error {
	if err := store.CheckRolloutID(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, ok := s.rollouts[id]; !ok {
		return fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	if s.closed.Load() {
		return errClosed
	}
	// Lock order as in Close: rmu, then the log's lock. Appends and reads
	// release rmu before they take the log's lock.
	if l := s.logs[id]; l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := removeFile(s.logPath(id)); err != nil {
			return fmt.Errorf("filestore: delete log of rollout %s: %w", id, err)
		}
		// Whatever happens to the record, the log is now empty.
		l.checked = false
		l.deleted = true
		delete(s.logs, id)
	} else if err := removeFile(s.logPath(id)); err != nil {
		return fmt.Errorf("filestore: delete log of rollout %s: %w", id, err)
	}
	if err := removeFile(s.rolloutPath(id)); err != nil {
		return fmt.Errorf("filestore: delete rollout %s: %w", id, err)
	}
	delete(s.rollouts, id)
	if err := syncDir(filepath.Join(s.dir, rolloutsDir)); err != nil {
		return fmt.Errorf("filestore: delete rollout %s: %w", id, err)
	}
	return nil
}
