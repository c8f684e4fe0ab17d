package rolloutlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/sshexec"
)

// testSecrets are the env values of the table tests: "abc" is too short
// to be masked, "hunter2" begins a longer value, one holds a raw control
// character and one spells out an escape.
var testSecrets = []string{"s3cr3t-token", "abc", "hunter2", "hunter2-extended", "tok\x1ben", `pa\x00ss`, "s3cr3t-token"}

func TestCleanLine(t *testing.T) {
	const max = maxLogLine
	a := func(n int) string { return strings.Repeat("a", n) }
	trunc := func(n int) string { return fmt.Sprintf(" …[truncated %d bytes]", n) }
	for _, c := range []struct {
		name, in, want string
	}{
		{"plain", "compiling package 3 of 90", "compiling package 3 of 90"},
		{"empty", "", ""},
		{"tab kept", "a\tb\t", "a\tb\t"},
		{"unicode kept", "ünïcödé ✓ 日本語 🍞 \u2028 \ufffd", "ünïcödé ✓ 日本語 🍞 \u2028 \ufffd"},
		{"backslashes kept", `C:\x1b \\ \u0000`, `C:\x1b \\ \u0000`},
		{"ANSI colours", "\x1b[1;32mOK\x1b[0m done", `\x1b[1;32mOK\x1b[0m done`},
		{"CR, NUL, DEL, BEL", "50%\r100%\x00\x7f\x07", `50%\x0d100%\x00\x7f\x07`},
		{"invalid UTF-8", "bad \xff\xfe, cut rune \xe2\x82.", `bad \xff\xfe, cut rune \xe2\x82.`},
		{"C1 control", "next\u0085line \u009b", `next\u0085line \u009b`},
		{"masked", "token=s3cr3t-token;", "token=***;"},
		{"masked several times", "s3cr3t-token s3cr3t-tokens3cr3t-token x s3cr3t-token", "*** ****** x ***"},
		{"short values not masked", "abc abcd", "abc abcd"},
		{"longer value first", "hunter2-extended and hunter2", "*** and ***"},
		{"value with a control character", "x tok\x1ben y", "x *** y"},
		{"value spelled by an escape", "pa\x00ss", "***"},
		{"masked among escapes", "\x1b[31ms3cr3t-token\x1b[0m", `\x1b[31m***\x1b[0m`},
		{"exactly the limit", a(max), a(max)},
		{"one byte over", a(max + 1), a(max) + trunc(1)},
		{"64 KiB", a(64 << 10), a(max) + trunc(64<<10-max)},
		{"rune across the cut", a(max-1) + "€zz", a(max-1) + trunc(5)},
		{"4-byte rune across the cut", a(max-2) + "🍞", a(max-2) + trunc(4)},
		{"escape across the cut", a(max-2) + "\x1bzzz", a(max-2) + trunc(7)},
		{"C1 escape across the cut", a(max-5) + "\u0085z", a(max-5) + trunc(7)},
		{"escape ending at the cut", a(max-4) + "\x1bz", a(max-4) + `\x1b` + trunc(1)},
		{"escapes past the limit", strings.Repeat("\xff", 10000), strings.Repeat(`\xff`, max/4) + trunc(40000-max)},
		{"value across the cut", a(max-5) + "s3cr3t-token" + a(100), a(max-5) + "***" + "aa" + trunc(98)},
		{"value just past the cut", a(max-1) + "s3cr3t-token", a(max-1) + "*" + trunc(2)},
		{"several values, under the limit once masked",
			"s3cr3t-token " + a(max-20) + "s3cr3t-token" + a(10) + "s3cr3t-token",
			"*** " + a(max-20) + "***" + a(10) + "***"},
		{"values before, across and after the cut",
			"s3cr3t-token " + a(max-5) + "s3cr3t-token" + a(10) + "s3cr3t-token",
			"*** " + a(max-5) + "*" + trunc(15)},
		{"values before and after the cut",
			"s3cr3t-token " + a(max-10) + "s3cr3t-token" + a(10) + "s3cr3t-token",
			"*** " + a(max-10) + "***" + a(3) + trunc(10)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cleanLine(MaskReplacer(testSecrets), c.in)
			if got != c.want {
				if len(got) > 200 || len(c.want) > 200 {
					t.Fatalf("cleanLine: %d bytes, ends %q; want %d bytes, ending %q", len(got), tail(got), len(c.want), tail(c.want))
				}
				t.Fatalf("cleanLine(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			checkClean(t, got)
			// Nothing of a value is left (a value across the cut must
			// not leave its beginning).
			if strings.Contains(got, "s3cr") || strings.Contains(got, "hunter2-") {
				t.Fatalf("part of a value left in %q", tail(got))
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-60):] }

// checkClean checks what holds for every cleaned line: valid UTF-8 (so the
// store keeps it exactly), no control character but tab, not longer than
// the limit and its marker, and no masked value in it.
func checkClean(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("not valid UTF-8: %q", tail(s))
	}
	if store.ValidText(s) != s {
		t.Fatalf("the store would change it: %q", tail(s))
	}
	for _, r := range s {
		if needsEscape(r) {
			t.Fatalf("holds control character %U: %q", r, tail(s))
		}
	}
	if len(s) > maxLogLine+len(" …[truncated 99999 bytes]") {
		t.Fatalf("%d bytes, longer than the limit", len(s))
	}
	for _, v := range testSecrets {
		if len(v) >= minMasked && strings.Contains(s, v) {
			t.Fatalf("value %q not masked in %q", v, tail(s))
		}
	}
}

func FuzzCleanLine(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[0m", "\xff", strings.Repeat("\xe2\x82", 9000),
		strings.Repeat("x", maxLogLine-3) + "s3cr3t-token", "hunter2-extended\r", "tok\x1ben"} {
		f.Add(s)
	}
	mask := MaskReplacer(testSecrets)
	f.Fuzz(func(t *testing.T, s string) {
		checkClean(t, cleanLine(mask, s))
	})
}

func TestMaskReplacer(t *testing.T) {
	if m := MaskReplacer([]string{"", "a", "abc"}); m != nil {
		t.Fatalf("values shorter than %d bytes make a replacer", minMasked)
	}
	if got := cleanLine(nil, "x\x1by"); got != `x\x1by` {
		t.Fatalf("without a mask: %q", got)
	}
}

// The sink cleans lines before it stores them, numbers them across nodes
// in the order they were added, and stores every one by Close.
func TestLogSinkStoresCleanLines(t *testing.T) {
	st := testenv.FileStore(t).(store.Rollouts)
	const id = "web-1-10650000"
	if err := st.CreateRollout(t.Context(), storetest.Rollout(id, "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	sink := NewSink(st, id, slog.New(slog.DiscardHandler), testSecrets...)
	in := []api.LogLine{
		{Node: "n1", Stream: api.StreamStdout, Text: "\x1b[32mbuilt\x1b[0m with s3cr3t-token"},
		{Node: "n2", Stream: api.StreamStderr, Text: "bad \xff byte"},
		{Node: "", Stream: api.StreamBakery, Text: "step build"},
		{Node: "n1", Stream: api.StreamStdout, Text: strings.Repeat("z", maxLogLine+10)},
	}
	// More than one batch.
	for i := range 2*logBatch + 7 {
		in = append(in, api.LogLine{Node: "n2", Stream: api.StreamStdout, Text: fmt.Sprintf("line %d\r", i)})
	}
	for _, l := range in {
		sink.Add(l.Node, l.Stream, l.Text)
	}
	sink.Close()
	sink.Close() // twice is fine
	if got := sink.LastSeq(); got != int64(len(in)) {
		t.Fatalf("LastSeq = %d, want %d", got, len(in))
	}
	got, err := st.Logs(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]api.LogLine, len(in))
	mask := MaskReplacer(testSecrets)
	for i, l := range in {
		want[i] = api.LogLine{Seq: int64(i + 1), Node: l.Node, Stream: l.Stream, Text: cleanLine(mask, l.Text)}
	}
	if want[0].Text != `\x1b[32mbuilt\x1b[0m with ***` || want[1].Text != `bad \xff byte` || !strings.HasSuffix(want[3].Text, " …[truncated 10 bytes]") {
		t.Fatalf("cleanLine: %q, %q", want[0].Text, want[1].Text)
	}
	for i := range got {
		if got[i].Time == nil {
			t.Fatalf("line %d has no time", got[i].Seq)
		}
		got[i].Time = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("stored lines (-want +got):\n%s", diff)
	}
}

// Throughput: 100,000 lines through the rollout log path the reconciler
// uses (Sink → store), on both stores.

const throughputLines = 100_000

// rolloutStores are the stores a rollout log is written to.
var rolloutStores = []struct {
	name string
	open func(testing.TB) store.Rollouts
}{
	{"file", func(tb testing.TB) store.Rollouts {
		s, err := filestore.Open(tb.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(tb testing.TB) store.Rollouts {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := pgstore.Open(ctx, pgtest.DatabaseURL(tb), pgstore.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}},
}

// buildOutput returns n lines of build output as a node sends them: two
// nodes, stdout and stderr, every tenth line in ANSI colours, some with
// an env value in them.
func buildOutput(n int) []api.LogLine {
	out := make([]api.LogLine, n)
	for i := range out {
		l := api.LogLine{Node: "n1", Stream: api.StreamStdout, Text: fmt.Sprintf("[%6d/%d] CC src/module%03d/file%04d.c -o build/file%04d.o", i+1, n, i%100, i%10000, i%10000)}
		switch {
		case i%10 == 0:
			l.Text = "\x1b[1;33mwarning:\x1b[0m " + l.Text
		case i%97 == 0:
			l.Text += " DATABASE_PASSWORD=s3cr3t-token"
		}
		if i%3 == 0 {
			l.Node, l.Stream = "n2", api.StreamStderr
		}
		out[i] = l
	}
	return out
}

// pushLog creates rollout id and sends lines through a log sink into it;
// it returns when every line is stored.
func pushLog(tb testing.TB, st store.Rollouts, id string, lines []api.LogLine) {
	if err := st.CreateRollout(context.Background(), storetest.Rollout(id, "web", 1, 0)); err != nil {
		tb.Fatal(err)
	}
	sink := NewSink(st, id, slog.New(slog.DiscardHandler), testSecrets...)
	for _, l := range lines {
		sink.Add(l.Node, l.Stream, l.Text)
	}
	sink.Close()
}

// checkStoredLog reads the log of id back page by page, as a client
// following it does, and compares it with lines, cleaned.
func checkStoredLog(tb testing.TB, st store.Rollouts, id string, lines []api.LogLine) {
	tb.Helper()
	mask := MaskReplacer(testSecrets)
	next, after := 0, int64(0)
	for {
		page, err := st.Logs(context.Background(), id, after, 4096)
		if err != nil {
			tb.Fatalf("logs after %d: %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, got := range page {
			if next >= len(lines) {
				tb.Fatalf("line %d stored beyond the %d sent", got.Seq, len(lines))
			}
			want := lines[next]
			if got.Seq != int64(next+1) || got.Node != want.Node || got.Stream != want.Stream || got.Text != cleanLine(mask, want.Text) || got.Time == nil {
				tb.Fatalf("line %d: got %+v, want seq %d %s/%s %q", next+1, got, next+1, want.Node, want.Stream, cleanLine(mask, want.Text))
			}
			next++
		}
		after = page[len(page)-1].Seq
	}
	if next != len(lines) {
		tb.Fatalf("%d lines stored, want %d", next, len(lines))
	}
}

func TestRolloutLog100k(t *testing.T) {
	lines := buildOutput(throughputLines)
	for _, sc := range rolloutStores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t)
			const id = "web-1-100c0000"
			start := time.Now()
			pushLog(t, st, id, lines)
			stored := time.Since(start)
			checkStoredLog(t, st, id, lines)
			t.Logf("%s store: %d lines stored in %v (%.0f lines/s), read back in %v",
				sc.name, len(lines), stored.Round(time.Millisecond), float64(len(lines))/stored.Seconds(), (time.Since(start) - stored).Round(time.Millisecond))
		})
	}
}

// BenchmarkRolloutLog100k sends 100,000 lines of build output through a
// log sink into each store; lines/s counts lines stored (the sink is
// closed, so every line is in the store).
func BenchmarkRolloutLog100k(b *testing.B) {
	lines := buildOutput(throughputLines)
	for _, sc := range rolloutStores {
		b.Run(sc.name, func(b *testing.B) {
			st := sc.open(b)
			var last string
			for i := 0; b.Loop(); i++ {
				last = fmt.Sprintf("web-%d-100c0000", i+1)
				pushLog(b, st, last, lines)
			}
			b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
			checkStoredLog(b, st, last, lines)
		})
	}
}

// BenchmarkLocalSeq100k runs "seq 100000" with the local executor, the
// output discarded (no sink, nothing captured) and then streamed, as a
// rollout step's is, through a log sink into the file store. overhead-x
// is how many times longer the streamed run takes.
func BenchmarkLocalSeq100k(b *testing.B) {
	ctx := context.Background()
	ex := sshexec.NewLocal()
	st := rolloutStores[0].open(b)
	var discard, streamed time.Duration
	var last string
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if _, err := ex.Run(ctx, sshexec.Command{Script: "seq 100000", CaptureLimit: -1}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		last = fmt.Sprintf("web-%d-5e900000", i+1)
		if err := st.CreateRollout(ctx, storetest.Rollout(last, "web", 1, 0)); err != nil {
			b.Fatal(err)
		}
		sink := NewSink(st, last, slog.New(slog.DiscardHandler))
		if _, err := ex.Run(ctx, sshexec.Command{Script: "seq 100000", CaptureLimit: -1, Sink: sshexec.SinkFunc(func(l sshexec.Line) {
			sink.Add("n1", l.Stream.String(), l.Text)
		})}); err != nil {
			b.Fatal(err)
		}
		sink.Close()
		t2 := time.Now()
		discard += t1.Sub(t0)
		streamed += t2.Sub(t1)
	}
	b.ReportMetric(float64(discard.Milliseconds())/float64(b.N), "discard-ms/op")
	b.ReportMetric(float64(streamed.Milliseconds())/float64(b.N), "logsink-ms/op")
	b.ReportMetric(float64(streamed)/float64(discard), "overhead-x")
	if got, err := st.Logs(ctx, last, 99_999, 0); err != nil || len(got) != 1 || got[0].Text != "100000" {
		b.Fatalf("last line stored: %v, %v; want 100000", got, err)
	}
}

// gatedStore holds AppendLogs until gate is closed.
type gatedStore struct {
	store.Rollouts
	gate    chan struct{}
	entered atomic.Int32
}

func (g *gatedStore) AppendLogs(ctx context.Context, id string, lines []api.LogLine) error {
	g.entered.Add(1)
	<-g.gate
	return g.Rollouts.AppendLogs(ctx, id, lines)
}

// A store slower than the command: Add waits once maxPending bytes are
// buffered, and every line is stored once the store goes on.
func TestLogSinkBoundsPending(t *testing.T) {
	fs := testenv.FileStore(t).(store.Rollouts)
	const id = "web-1-b0d00000"
	if err := fs.CreateRollout(t.Context(), storetest.Rollout(id, "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	st := &gatedStore{Rollouts: fs, gate: make(chan struct{})}
	sink := NewSink(st, id, slog.New(slog.DiscardHandler))
	const perLine, bound = 20, 10 // lines in buffer before Add waits
	sink.mu.Lock()
	sink.maxPending = bound * lineCost(fmt.Sprintf("line %0*d", perLine-5, 0))
	sink.mu.Unlock()
	const total = 200
	var added atomic.Int32
	go func() {
		for i := range total {
			sink.Add("n1", api.StreamStdout, fmt.Sprintf("line %0*d", perLine-5, i))
			added.Add(1)
		}
	}()
	// The first batch is taken and held in the store; then the buffer
	// fills up to the bound, and Add waits.
	testenv.Eventually(t, "a batch held in the store", func() bool { return st.entered.Load() == 1 })
	testenv.Eventually(t, "the buffer full", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.pending >= sink.maxPending
	})
	held := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return int(sink.seq) - len(sink.buf) // lines in the batch held by the store
	}()
	for range 20 {
		if n := int(added.Load()); n > held+bound {
			t.Fatalf("%d lines added while the store held a batch of %d and the bound is %d lines", n, held, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(st.gate)
	testenv.Eventually(t, "every line added", func() bool { return added.Load() == total })
	sink.Close()
	got, err := fs.Logs(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("%d lines stored, want %d", len(got), total)
	}
	for i, l := range got {
		if l.Seq != int64(i+1) || l.Text != fmt.Sprintf("line %0*d", perLine-5, i) {
			t.Fatalf("line %d: %+v", i+1, l)
		}
	}
}

// A value that sshexec's cut of a long line splits in two is masked: the
// end of the first piece is never stored, and the beginning of the next
// one is masked.
func TestLogSinkMasksValueSplitByExecutor(t *testing.T) {
	st := testenv.FileStore(t).(store.Rollouts)
	ctx := t.Context()
	const id = "web-1-5e910000"
	if err := st.CreateRollout(ctx, storetest.Rollout(id, "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	sink := NewSink(st, id, slog.New(slog.DiscardHandler), testSecrets...)
	// Through the local executor, as a rollout step: a line of more than
	// MaxLineBytes whose cut falls inside s3cr3t-token ("s3cr" | "3t-token"),
	// then a line of exactly MaxLineBytes followed by one that only looks
	// like the end of a value, and one after a split on another stream.
	script := fmt.Sprintf(`pad() { head -c "$1" /dev/zero | tr '\0' a; }
pad %d; printf 's3cr3t-token tail\n'
pad %d; printf '\n3t-token is not a value here\n'
pad %d >&2; printf 's3cr' >&2; printf '3t-token on stdout\n'; printf '3t-token rest\n' >&2
`, sshexec.MaxLineBytes-4, sshexec.MaxLineBytes, sshexec.MaxLineBytes-4)
	_, err := sshexec.NewLocal().Run(ctx, sshexec.Command{Script: script, CaptureLimit: -1, Sink: sshexec.SinkFunc(func(l sshexec.Line) {
		sink.Add("n1", l.Stream.String(), l.Text)
	})})
	if err != nil {
		t.Fatal(err)
	}
	sink.Close()
	lines, err := st.Logs(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		text := l.Text
		if len(text) > 40 {
			text = fmt.Sprintf("%d bytes, ending %q", len(text), text[len(text)-30:])
		}
		got = append(got, l.Stream+": "+text)
	}
	cut := func(n int) string {
		text := strings.Repeat("a", maxLogLine) + fmt.Sprintf(" …[truncated %d bytes]", n)
		return fmt.Sprintf("%d bytes, ending %q", len(text), text[len(text)-30:])
	}
	want := []string{
		"stdout: " + cut(sshexec.MaxLineBytes-maxLogLine),
		"stdout: *** tail",
		"stdout: " + cut(sshexec.MaxLineBytes-maxLogLine),
		"stdout: 3t-token is not a value here",
		"stderr: " + cut(sshexec.MaxLineBytes-maxLogLine),
		"stdout: 3t-token on stdout",
		"stderr: *** rest",
	}
	// The two streams are read apart: only the order within each is fixed.
	byStream := func(lines []string, prefix string) []string {
		var out []string
		for _, l := range lines {
			// An empty line follows a line of exactly MaxLineBytes
			// when its newline came in a later read.
			if strings.HasPrefix(l, prefix) && l != prefix {
				out = append(out, l)
			}
		}
		return out
	}
	for _, stream := range []string{"stdout: ", "stderr: "} {
		if diff := cmp.Diff(byStream(want, stream), byStream(got, stream)); diff != "" {
			t.Errorf("%s lines (-want +got):\n%s", stream, diff)
		}
	}
}

// A multi-line secret (a PEM key) is masked line by line: logs are read a
// line at a time, so the whole value never appears in one line; each of
// its lines is masked wherever it appears. The rollout log (the sink) and
// runtime logs (MaskReplacer) mask alike.
func TestMaskMultiLineSecret(t *testing.T) {
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" +
		"QyNTUxOQAAACDx0dTmTSU6BVA0f5XaGljJ5b9hPCYx0Npmt9OnaZGyZQAAAJiy4K6psuCu\n\nab\n-----END OPENSSH PRIVATE KEY-----\n"
	mask := MaskReplacer([]string{pem})
	for _, line := range strings.Split(pem, "\n") {
		line = strings.TrimSuffix(line, "\r")
		got := cleanLine(mask, "cat key: "+line+" done")
		if len(line) >= minMasked && got != "cat key: *** done" {
			t.Errorf("line %q of the key logged as %q", line, got)
		}
	}
	if got := cleanLine(mask, "ab"); got != "ab" {
		t.Errorf("a line shorter than %d bytes is masked: %q", minMasked, got)
	}

	st := testenv.FileStore(t).(store.Rollouts)
	const id = "web-1-10650001"
	if err := st.CreateRollout(t.Context(), storetest.Rollout(id, "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	sink := NewSink(st, id, slog.New(slog.DiscardHandler), pem)
	for _, line := range strings.Split(pem, "\n") {
		sink.Add("n1", api.StreamStdout, line)
	}
	sink.Close()
	got, err := st.Logs(t.Context(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		if strings.Contains(l.Text, "b3BlbnNz") || strings.Contains(l.Text, "PRIVATE KEY") {
			t.Errorf("stored line %d shows the key: %q", l.Seq, l.Text)
		}
	}
}
