package rolloutlog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/sshexec"
)

// Sink numbers a rollout's log lines across all nodes and appends them
// to the store in batches from its own goroutine, so that a slow store
// never blocks the SSH readers for long. Before a line is stored it is
// cleaned (see cleanLine): values listed in mask (the app's environment)
// are replaced by ***, control characters and invalid UTF-8 are escaped
// visibly, and a line longer than maxLogLine is cut.
//
// What waits to be stored is bounded: when maxPending bytes of lines are
// buffered (a command printing faster than the store takes it), Add waits
// until the next batch is taken, and the command slows down (sshexec's
// back-pressure) instead of the control plane's memory growing.
type Sink struct {
	st         store.Rollouts
	id         string
	log        *slog.Logger
	mask       *strings.Replacer // nil: nothing to mask
	secrets    []string          // the values mask replaces, longest first
	tailMu     sync.Mutex
	tails      map[[2]string]string // {node, stream} → end of a line sshexec split
	maxPending int                  // bytes buffered before Add waits
	mu         sync.Mutex
	taken      *sync.Cond // on mu: a batch was taken, or the sink stopped
	seq        int64
	buf        []api.LogLine
	pending    int  // bytes of buf, by lineCost
	ended      bool // the loop stopped: nothing takes batches any more
	wake       chan struct{}
	done       chan struct{}
	stopped    chan struct{}
	close      sync.Once
}

const logBatch = 500

// maxPendingLog is how many bytes of lines (by lineCost) a sink buffers
// before Add waits for the store.
const maxPendingLog = 8 << 20

// lineCost is what a buffered line counts against maxPending: its text and
// about the rest of an api.LogLine.
func lineCost(text string) int { return len(text) + 96 }

// maxLogLine is the longest line text stored, in bytes, before the
// truncation marker.
const maxLogLine = 16 << 10

// minMasked is the shortest value masked: shorter ones (a port, "1",
// "true") would blank out ordinary output.
const minMasked = 4

// NewSink returns the sink of rollout id's log; values in secrets are
// masked in what it stores. Close it when the rollout ends.
func NewSink(st store.Rollouts, id string, log *slog.Logger, secrets ...string) *Sink {
	s := &Sink{st: st, id: id, log: log, mask: MaskReplacer(secrets), secrets: maskedValues(secrets), maxPending: maxPendingLog,
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	s.taken = sync.NewCond(&s.mu)
	go s.loop()
	return s
}

// maskedValues returns the secrets that are masked: those of at least
// minMasked bytes, each once, longest first — and, of a multi-line value
// (a PEM key), each of its lines of at least minMasked bytes (without a
// trailing \r): logs are read line by line, so the whole value never
// appears in one line, but each of its lines may.
func maskedValues(secrets []string) []string {
	var vals []string
	add := func(v string) {
		if len(v) >= minMasked && !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	for _, v := range secrets {
		add(v)
		if strings.ContainsAny(v, "\n\r") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if strings.TrimSpace(line) != "" {
					add(line)
				}
			}
		}
	}
	slices.SortStableFunc(vals, func(a, b string) int { return len(b) - len(a) })
	return vals
}

// MaskReplacer returns a replacer of every secret of at least minMasked
// bytes by ***, or nil when there is none. Longer secrets come first: a
// secret that begins another would otherwise be replaced at its place
// and leave the rest of the longer one readable.
func MaskReplacer(secrets []string) *strings.Replacer {
	vals := maskedValues(secrets)
	if len(vals) == 0 {
		return nil
	}
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, "***")
	}
	return strings.NewReplacer(pairs...)
}

// cleanLine returns text as it is stored:
//
//  1. every occurrence of a masked value is replaced by *** (on the whole
//     line, before it is cut, so a value across the cut is masked whole);
//  2. control characters other than tab, and bytes that are not UTF-8,
//     are written as visible escapes: \x1b for a byte (an ANSI colour
//     code reads "\x1b[1;32m"), \u0085 for a C1 control. Backslashes
//     already in the text are kept as they are;
//  3. if the result is longer than maxLogLine bytes, it is cut at a rune
//     boundary at most maxLogLine bytes in (never inside an escape made in
//     step 2) and " …[truncated N bytes]" is added, N being the bytes cut
//     off.
//
// If escaping changed the line, masking runs once more: a value holding
// what an escape spells out (a literal "\x1b") is masked too.
func cleanLine(mask *strings.Replacer, text string) string {
	if mask != nil {
		text = mask.Replace(text)
	}
	if esc, changed := escapeControls(text); changed {
		text = esc
		if mask != nil {
			text = mask.Replace(text)
		}
	}
	if len(text) <= maxLogLine {
		return text
	}
	cut := maxLogLine
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	// Do not split an escape: \xHH is 4 bytes, \uHHHH 6.
	for back := 1; back < 6 && back <= cut; back++ {
		i := cut - back
		if text[i] != '\\' || i+1 >= len(text) {
			continue
		}
		if n := escLen(text[i+1]); n > 0 && i+n > cut && isEscape(text[i:], n) {
			cut = i
			break
		}
	}
	return text[:cut] + fmt.Sprintf(" …[truncated %d bytes]", len(text)-cut)
}

// escLen is the length of an escape that starts with a backslash and c.
func escLen(c byte) int {
	switch c {
	case 'x':
		return 4
	case 'u':
		return 6
	}
	return 0
}

// isEscape says whether s begins with an escape of n bytes (\xHH or
// \uHHHH).
func isEscape(s string, n int) bool {
	if len(s) < n {
		return false
	}
	for _, c := range []byte(s[2:n]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// escapeControls writes control characters other than tab and bytes that
// are not UTF-8 as escapes (see cleanLine), and says whether it changed
// anything. Text without any is returned as it is, without allocating.
func escapeControls(s string) (string, bool) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if needsEscape(rune(c)) {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || needsEscape(r) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s, false
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < utf8.RuneSelf && needsEscape(r):
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case needsEscape(r): // C1: U+0080 to U+009F
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4&0xf])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String(), true
}

// needsEscape says whether r is a control character other than tab: C0,
// DEL or C1.
func needsEscape(r rune) bool {
	return r != '\t' && (r < 0x20 || 0x7f <= r && r <= 0x9f)
}

// sshexec cuts an output line longer than sshexec.MaxLineBytes into
// pieces, and the sink stores each piece's first maxLogLine bytes: the end
// of a piece, where a value may begin, is never stored (this fails to
// compile otherwise), but the beginning of the next piece is. maskSplit
// masks it.
var _ [sshexec.MaxLineBytes - maxLogLine - 1]struct{}

// maskSplit returns text with its beginning replaced by *** when it ends a
// masked value that the line before it, from the same node and stream,
// began, that line being a piece sshexec cut off at MaxLineBytes (a line
// of exactly that length is taken for one: then at worst a few bytes too
// many are masked).
func (s *Sink) maskSplit(node, stream, text string) string {
	if len(s.secrets) == 0 {
		return text
	}
	key := [2]string{node, stream}
	s.tailMu.Lock()
	prev, cont := s.tails[key]
	if len(text) == sshexec.MaxLineBytes {
		if s.tails == nil {
			s.tails = map[[2]string]string{}
		}
		// The longest value is longer than any part of it to match.
		s.tails[key] = strings.Clone(text[len(text)-min(len(text), len(s.secrets[0])):])
	} else if cont {
		delete(s.tails, key)
	}
	s.tailMu.Unlock()
	if !cont {
		return text
	}
	cut := 0
	for _, v := range s.secrets {
		for k := 1; k < len(v); k++ {
			if len(v)-k > cut && strings.HasSuffix(prev, v[:k]) && strings.HasPrefix(text, v[k:]) {
				cut = len(v) - k
			}
		}
	}
	if cut == 0 {
		return text
	}
	return "***" + text[cut:]
}

// Add appends one line, cleaned (see cleanLine and maskSplit).
func (s *Sink) Add(node, stream, text string) {
	// Outside the lock: nodes add in parallel.
	text = cleanLine(s.mask, s.maskSplit(node, stream, text))
	now := api.Now()
	s.mu.Lock()
	for s.pending >= s.maxPending && !s.ended {
		s.taken.Wait()
	}
	s.seq++
	s.buf = append(s.buf, api.LogLine{Seq: s.seq, Node: node, Stream: stream, Time: now, Text: text})
	s.pending += lineCost(text)
	full := len(s.buf) >= logBatch || s.pending >= s.maxPending
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// StartAfter numbers the sink's lines from seq+1: a rollout that goes on
// in a later reconcile (it waited for a node) appends to its log. Call it
// before the first Add.
func (s *Sink) StartAfter(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.seq {
		s.seq = seq
	}
}

// LastSeq returns the sequence number of the last line added.
func (s *Sink) LastSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

func (s *Sink) loop() {
	defer close(s.stopped)
	defer func() {
		s.mu.Lock()
		s.ended = true
		s.taken.Broadcast()
		s.mu.Unlock()
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			s.flush()
			return
		case <-t.C:
		case <-s.wake:
		}
		s.flush()
	}
}

func (s *Sink) flush() {
	s.mu.Lock()
	lines := s.buf
	s.buf, s.pending = nil, 0
	s.taken.Broadcast()
	s.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.st.AppendLogs(ctx, s.id, lines); err != nil {
		s.log.Error("storing rollout log lines", "rollout", s.id, "lines", len(lines), "err", err)
	}
}

// Close flushes what is left and stops the sink. It is safe to call twice.
func (s *Sink) Close() {
	s.close.Do(func() { close(s.done) })
	<-s.stopped
}
