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
	"regexp"
	"sort"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// Rollouts live in <dir>/rollouts: <id>.json is the record (written
// atomically), <id>.log its log, one JSON LogLine a line, appended and
// fsynced a batch at a time. A crash in the middle of an append leaves a
// partial last line, which is cut off (with a warning) before the next
// append and skipped when reading.

var _ store.Rollouts = (*Store)(nil)

const (
	rolloutsDir = "rollouts"
	rolloutExt  = ".json"
	logExt      = ".log"
)

// rolloutID is what an ID must look like to become a file name.
var rolloutID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *Store) rolloutPath(id string) string {
	return filepath.Join(s.dir, rolloutsDir, id+rolloutExt)
}

func (s *Store) logPath(id string) string { return filepath.Join(s.dir, rolloutsDir, id+logExt) }

func checkRolloutID(id string) error {
	if !rolloutID.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("%w: rollout id %q: want 1-128 letters, digits, '-', '_' or '.'", store.ErrInvalid, id)
	}
	return nil
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
	checked bool  // the file's tail was checked for a torn line
	lastSeq int64 // the largest Seq in the file
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
	if err := checkRolloutID(r.ID); err != nil {
		return err
	}
	if msg := api.ValidateName(r.Deployment); msg != "" {
		return fmt.Errorf("%w: rollout %s: deployment: %s", store.ErrInvalid, r.ID, msg)
	}
	if s.closed.Load() {
		return errClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, ok := s.rollouts[r.ID]; ok {
		return fmt.Errorf("rollout %q: %w", r.ID, store.ErrAlreadyExists)
	}
	return s.writeRollout(r)
}

// UpdateRollout implements store.Rollouts.
func (s *Store) UpdateRollout(ctx context.Context, r *api.Rollout) error {
	if r == nil {
		return fmt.Errorf("%w: no rollout", store.ErrInvalid)
	}
	if err := checkRolloutID(r.ID); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
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
	return s.writeRollout(r)
}

// writeRollout stores r. The caller holds rmu.
func (s *Store) writeRollout(r *api.Rollout) error {
	c := copyRollout(r)
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.rolloutPath(c.ID), append(data, '\n'), statePerm); err != nil {
		return fmt.Errorf("filestore: write rollout %s: %w", c.ID, err)
	}
	s.rollouts[c.ID] = c
	return nil
}

// GetRollout implements store.Rollouts.
func (s *Store) GetRollout(ctx context.Context, id string) (*api.Rollout, error) {
	if err := checkRolloutID(id); err != nil {
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

// ListRollouts implements store.Rollouts.
func (s *Store) ListRollouts(ctx context.Context, deployment string, limit int) ([]*api.Rollout, error) {
	if msg := api.ValidateName(deployment); msg != "" {
		return nil, fmt.Errorf("%w: deployment: %s", store.ErrInvalid, msg)
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.rmu.Lock()
	var out []*api.Rollout
	for _, r := range s.rollouts {
		if r.Deployment == deployment {
			out = append(out, r)
		}
	}
	s.rmu.Unlock()
	created := func(r *api.Rollout) int64 {
		if r.CreatedAt == nil {
			return 0
		}
		return r.CreatedAt.Unix()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Revision != b.Revision {
			return a.Revision > b.Revision
		}
		if ca, cb := created(a), created(b); ca != cb {
			return ca > cb
		}
		return a.ID > b.ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i, r := range out {
		out[i] = copyRollout(r)
	}
	return out, nil
}

// AppendLogs implements store.Rollouts. Lines must carry increasing Seq
// values above those already stored (else ErrInvalid, and nothing is
// appended).
func (s *Store) AppendLogs(ctx context.Context, id string, lines []api.LogLine) error {
	if err := checkRolloutID(id); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	if len(lines) == 0 {
		return nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, ok := s.rollouts[id]; !ok {
		return fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	l := s.logs[id]
	if l == nil {
		l = &rolloutLog{}
		s.logs[id] = l
	}
	if !l.checked {
		last, err := s.repairLog(id)
		if err != nil {
			return err
		}
		l.checked, l.lastSeq = true, last
	}
	var buf bytes.Buffer
	prev := l.lastSeq
	for _, line := range lines {
		if line.Seq <= prev {
			return fmt.Errorf("%w: rollout %s: log line seq %d does not follow %d", store.ErrInvalid, id, line.Seq, prev)
		}
		prev = line.Seq
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	f, err := os.OpenFile(s.logPath(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, statePerm)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The file may now end in part of the batch: check it again
		// before the next append.
		l.checked = false
		return fmt.Errorf("filestore: append log of rollout %s: %w", id, err)
	}
	l.lastSeq = prev
	return nil
}

// repairLog cuts a torn last line off a rollout's log and returns the
// largest Seq in it. The caller holds rmu.
func (s *Store) repairLog(id string) (int64, error) {
	path := s.logPath(id)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("filestore: %w", err)
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		keep := bytes.LastIndexByte(data, '\n') + 1
		s.log.Warn("filestore: cutting a torn last line off a rollout log", "file", path, "bytes", n-keep)
		if err := os.Truncate(path, int64(keep)); err != nil {
			return 0, fmt.Errorf("filestore: %w", err)
		}
		data = data[:keep]
	}
	var last int64
	err = scanLog(bytes.NewReader(data), func(l api.LogLine) bool {
		last = max(last, l.Seq)
		return true
	})
	return last, err
}

// scanLog calls fn for each complete line of a log until fn returns false.
func scanLog(r io.Reader, fn func(api.LogLine) bool) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			var l api.LogLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return fmt.Errorf("%w: rollout log: %v", store.ErrCorrupt, jerr)
			}
			if !fn(l) {
				return nil
			}
		}
		if err == io.EOF {
			return nil // a torn last line is not a line yet
		}
		if err != nil {
			return err
		}
	}
}

// Logs implements store.Rollouts.
func (s *Store) Logs(ctx context.Context, id string, after int64, limit int) ([]api.LogLine, error) {
	if err := checkRolloutID(id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.rmu.Lock()
	_, ok := s.rollouts[id]
	s.rmu.Unlock()
	if !ok {
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	f, err := os.Open(s.logPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return []api.LogLine{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	out := []api.LogLine{}
	err = scanLog(f, func(l api.LogLine) bool {
		if l.Seq > after {
			out = append(out, l)
		}
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.logPath(id), err)
	}
	return out, nil
}
