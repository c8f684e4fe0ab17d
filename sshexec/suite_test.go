package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// liveProcs returns the pids of processes, other than zombies, whose
// command line contains marker.
func liveProcs(marker string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cl, []byte(marker)) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// state follows the ")" closing the command name.
		if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// sharedDir makes a directory that any user (the remote one too) can use.
func sharedDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sshexec-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// uniqueSleep returns an argument for sleep(1) that no other process has:
// 600 seconds plus a random fraction.
func uniqueSleep() string {
	return fmt.Sprintf("600.%09d", rand.IntN(1e9))
}

// collector is a Sink that records lines.
type collector struct {
	mu    sync.Mutex
	lines []Line
}

func (c *collector) Line(l Line) {
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
}

func (c *collector) texts(s Stream) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if l.Stream == s {
			out = append(out, l.Text)
		}
	}
	return out
}

func (c *collector) checkSeq(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range c.lines {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has Seq %d", i, l.Seq)
		}
	}
}

// testExecutor is the behaviour every Executor shares; it runs against the
// local executor, the in-process SSH server and a real sshd. The executor's
// processes run on this machine, so the test can inspect them.
func testExecutor(t *testing.T, ex Executor) {
	t.Run("LinesAndExitCode", func(t *testing.T) {
		var c collector
		res, err := ex.Run(t.Context(), Command{
			Script: "echo out1\necho err1 >&2\necho out2\nprintf 'no newline'\nprintf 'crlf\\r\\n' >&2\nexit 7",
			Sink:   &c,
		})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 7 || res.ExitCode != 7 {
			t.Fatalf("got %+v, %v; want exit status 7", res, err)
		}
		if diff := cmp.Diff([]string{"out1", "out2", "no newline"}, c.texts(Stdout)); diff != "" {
			t.Errorf("stdout lines (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"err1", "crlf"}, c.texts(Stderr)); diff != "" {
			t.Errorf("stderr lines (-want +got):\n%s", diff)
		}
		c.checkSeq(t)
		if string(res.Stdout) != "out1\nout2\nno newline" || string(res.Stderr) != "err1\ncrlf\r\n" {
			t.Errorf("captured %q, %q", res.Stdout, res.Stderr)
		}
		if IsTerminal(err) {
			t.Error("an exit status is not terminal")
		}
		res, err = ex.Run(t.Context(), Command{Script: "true"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("true: %+v, %v", res, err)
		}
		res, err = ex.Run(t.Context(), Command{Script: "kill -9 $$"})
		if !errors.As(err, &ee) || ee.Code != 137 {
			t.Fatalf("killed script: %+v, %v; want 137", res, err)
		}
	})

	t.Run("InterleavedOrder", func(t *testing.T) {
		// The script waits for the sink to acknowledge each line through a
		// FIFO, so the order of arrival is fully determined.
		fifo := filepath.Join(sharedDir(t), "ack")
		if err := mkfifo(fifo); err != nil {
			t.Fatal(err)
		}
		const n = 15
		var c collector
		var ack *os.File
		defer func() {
			if ack != nil {
				ack.Close()
			}
		}()
		sink := SinkFunc(func(l Line) {
			c.Line(l)
			if ack == nil {
				f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
					return
				}
				ack = f
			}
			ack.WriteString("ok\n")
		})
		// The script keeps the FIFO open (read-write, so that opening does
		// not wait for the writer) and reads one ack per line.
		script := fmt.Sprintf("exec 3<>%s\nfor i in $(seq %d); do echo \"out $i\"; read _ <&3; echo \"err $i\" >&2; read _ <&3; done\n", mustQuote(fifo), n)
		if _, err := ex.Run(t.Context(), Command{Script: script, Sink: sink, Timeout: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for i := 1; i <= n; i++ {
			want = append(want, fmt.Sprintf("stdout:out %d", i), fmt.Sprintf("stderr:err %d", i))
		}
		for _, l := range c.lines {
			got = append(got, l.Stream.String()+":"+l.Text)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		c.checkSeq(t)
	})

	t.Run("EnvDirStdin", func(t *testing.T) {
		dir := filepath.Join(sharedDir(t), "a dir 'with' $(odd) name")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o777)
		env := map[string]string{
			"PLAIN":  "value",
			"QUOTES": `it's "quoted" \ back\slash`,
			"SUBST":  "$(touch /tmp/pwned) `id` ${HOME}",
			"LINES":  "one\ntwo\n\nthree\n",
			"EMPTY":  "",
			"UTF8":   "héllo ✓",
		}
		stdin := []byte("binary\x00\x01\xff\nline two\n")
		var script strings.Builder
		script.WriteString("pwd\ncat | od -An -tx1 | tr -d ' \\n'; echo\n")
		for _, k := range []string{"PLAIN", "QUOTES", "SUBST", "LINES", "EMPTY", "UTF8"} {
			fmt.Fprintf(&script, "printf '%%s|' \"$%s\"\n", k)
		}
		res, err := ex.Run(t.Context(), Command{Script: script.String(), Env: env, Dir: dir, Stdin: bytes.NewReader(stdin)})
		if err != nil {
			t.Fatalf("%v: %s", err, res.Stderr)
		}
		var hex strings.Builder
		for _, b := range stdin {
			fmt.Fprintf(&hex, "%02x", b)
		}
		want := dir + "\n" + hex.String() + "\n" + strings.Join([]string{env["PLAIN"], env["QUOTES"], env["SUBST"], env["LINES"], env["EMPTY"], env["UTF8"]}, "|") + "|"
		if diff := cmp.Diff(want, string(res.Stdout)); diff != "" {
			t.Errorf("stdout (-want +got):\n%s", diff)
		}
		if _, err := os.Stat("/tmp/pwned"); err == nil {
			t.Error("an environment value was executed")
		}
		// Without Stdin the script reads /dev/null, not the bootstrap's input.
		res, err = ex.Run(t.Context(), Command{Script: "cat; echo done"})
		if err != nil || string(res.Stdout) != "done\n" {
			t.Errorf("stdin without Stdin: %q, %v", res.Stdout, err)
		}
	})

	t.Run("RawStdout", func(t *testing.T) {
		// Binary output, lines or not, arrives byte for byte; stderr is
		// still captured and split.
		var out bytes.Buffer
		var lines collector
		res, err := ex.Run(t.Context(), Command{Script: "printf 'a\\000b\\377\\nno newline'; head -c 300000 /dev/zero; echo oops >&2",
			Stdout: &out, Sink: &lines})
		if err != nil {
			t.Fatalf("%v: %s", err, res.Stderr)
		}
		want := append([]byte("a\x00b\xff\nno newline"), make([]byte, 300000)...)
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("stdout: %d bytes, want %d", out.Len(), len(want))
		}
		if len(res.Stdout) != 0 || string(res.Stderr) != "oops\n" || len(lines.texts(Stdout)) != 0 {
			t.Errorf("result stdout %q stderr %q, stdout lines %q", res.Stdout, res.Stderr, lines.texts(Stdout))
		}
	})
	t.Run("CleanShell", func(t *testing.T) {
		// The script runs in the shell that read the bootstrap's input: none
		// of the bootstrap's names are left, it has no background job of its
		// own (wait returns at once; the watcher is no child of it), and it
		// leads its process group.
		res, err := ex.Run(t.Context(), Command{
			Script:  "set | grep -c '^_bk_' || true\ncommand -v _bk_run || echo no-function\nwait; echo waited\ncut -d' ' -f5 /proc/$$/stat\necho $$",
			Timeout: 20 * time.Second,
		})
		if err != nil {
			t.Fatalf("%v: %s", err, res.Stderr)
		}
		lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
		if len(lines) != 5 || lines[0] != "0" || lines[1] != "no-function" || lines[2] != "waited" || lines[3] != lines[4] {
			t.Errorf("script's shell: %q", lines)
		}
	})

	t.Run("LargeAndTrickyScripts", func(t *testing.T) {
		// Over readModeMax (read with dd) and over a pipe buffer (here-document
		// written by a child of the shell); odd lines must pass verbatim.
		var script, want strings.Builder
		script.WriteString("set -e\ncat <<'END'\nEOF\n'quoted' \\ $HOME `x` $(y)\nEND\n")
		want.WriteString("EOF\n'quoted' \\ $HOME `x` $(y)\n")
		for i := range 5000 {
			fmt.Fprintf(&script, "echo line-%d   \\\n  continued\n", i)
			fmt.Fprintf(&want, "line-%d continued\n", i)
		}
		script.WriteString("printf 'last line without newline'")
		want.WriteString("last line without newline")
		for _, sc := range []string{script.String(), "echo small; exit 3"} {
			res, err := ex.Run(t.Context(), Command{Script: sc})
			if sc != script.String() {
				var ee *ExitError
				if !errors.As(err, &ee) || ee.Code != 3 || string(res.Stdout) != "small\n" {
					t.Errorf("small script: %q, %v", res.Stdout, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%d-byte script: %v: %s", len(sc), err, res.Stderr)
			}
			if diff := cmp.Diff(want.String(), string(res.Stdout)); diff != "" {
				t.Errorf("large script output (-want +got):\n%s", diff)
			}
		}
		// A large script followed by stdin data: the reader of the script
		// must not read ahead into the data.
		res, err := ex.Run(t.Context(), Command{Script: script.String() + "\ncat", Stdin: strings.NewReader("stdin data\n"), Timeout: 20 * time.Second})
		if err != nil || !strings.HasSuffix(string(res.Stdout), "last line without newlinestdin data\n") {
			t.Errorf("large script with stdin: %v; output ends %q", err, res.Stdout[max(0, len(res.Stdout)-60):])
		}
	})

	t.Run("InvalidCommands", func(t *testing.T) {
		for _, cmd := range []Command{
			{Script: "true", Env: map[string]string{"BAD-NAME": "x"}},
			{Script: "true", Env: map[string]string{"NUL": "a\x00b"}},
			{Script: "echo a\x00b"},
			{Script: "true", Dir: "/tmp/\x00"},
		} {
			_, err := ex.Run(t.Context(), cmd)
			if !errors.Is(err, ErrInvalidCommand) || !IsTerminal(err) {
				t.Errorf("%q: got %v, want a terminal ErrInvalidCommand", cmd.Script, err)
			}
		}
		res, err := ex.Run(t.Context(), Command{Script: "true", Dir: "/nonexistent/dir"})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != SetupFailedCode || !bytes.Contains(res.Stderr, []byte("bakery:")) {
			t.Errorf("missing dir: %v, %q", err, res.Stderr)
		}
	})

	t.Run("BackPressure", func(t *testing.T) {
		// The sink blocks on the first line until released; output far
		// larger than every buffer on the way must arrive complete and in
		// order once it is.
		const n = 100000
		gate := make(chan struct{})
		first := make(chan struct{})
		var once sync.Once
		var c collector
		sink := SinkFunc(func(l Line) {
			once.Do(func() { close(first); <-gate })
			c.Line(l)
		})
		done := make(chan error, 1)
		go func() {
			_, err := ex.Run(t.Context(), Command{
				Script:       fmt.Sprintf("seq %d | sed 's/^/out-line-padding-padding-/' & seq %d | sed 's/^/err-line-padding-padding-/' >&2; wait", n, n),
				Sink:         sink,
				CaptureLimit: -1,
				Timeout:      30 * time.Second,
			})
			done <- err
		}()
		<-first
		select {
		case err := <-done:
			t.Fatalf("Run returned while its sink was blocked: %v", err)
		default:
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		c.checkSeq(t)
		for _, s := range []Stream{Stdout, Stderr} {
			got := c.texts(s)
			if len(got) != n {
				t.Fatalf("%v: %d lines, want %d", s, len(got), n)
			}
			prefix := map[Stream]string{Stdout: "out", Stderr: "err"}[s]
			for i, l := range got {
				if want := fmt.Sprintf("%s-line-padding-padding-%d", prefix, i+1); l != want {
					t.Fatalf("%v line %d = %q, want %q", s, i, l, want)
				}
			}
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		marker := uniqueSleep()
		started := make(chan struct{})
		var once sync.Once
		// A child that ignores TERM must be killed too.
		script := fmt.Sprintf("(trap '' TERM; sleep %s) &\necho started\nsleep %s\n", marker, marker)
		_, err := ex.Run(t.Context(), Command{
			Script:  script,
			Timeout: 300 * time.Millisecond,
			Sink:    SinkFunc(func(Line) { once.Do(func() { close(started) }) }),
		})
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrCanceled) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
		select {
		case <-started:
		default:
			t.Fatal("the script did not start")
		}
		eventually(t, 5*time.Second, "sleep processes gone", func() bool { return len(liveProcs(marker)) == 0 })
	})

	t.Run("Cancel", func(t *testing.T) {
		marker := uniqueSleep()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var beats atomic.Int64
		sink := SinkFunc(func(l Line) {
			if l.Text == "started" {
				eventually(t, 5*time.Second, "sleep running", func() bool { return len(liveProcs(marker)) == 2 })
				cancel()
			}
		})
		began := time.Now()
		_, err := ex.Run(ctx, Command{
			Script:         fmt.Sprintf("sleep %s &\necho started\nsleep %s\necho never\n", marker, marker),
			Sink:           sink,
			Heartbeat:      func(time.Duration) { beats.Add(1) },
			HeartbeatEvery: time.Hour,
		})
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want ErrCanceled", err)
		}
		if d := time.Since(began); d > 10*time.Second {
			t.Errorf("cancel took %v", d)
		}
		eventually(t, 5*time.Second, "sleep processes gone", func() bool { return len(liveProcs(marker)) == 0 })
		// The executor still works afterwards.
		if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Heartbeat", func(t *testing.T) {
		flag := filepath.Join(sharedDir(t), "beats")
		var mu sync.Mutex
		var elapsed []time.Duration
		returned := atomic.Bool{}
		hb := func(d time.Duration) {
			if returned.Load() {
				t.Error("heartbeat after Run returned")
			}
			mu.Lock()
			elapsed = append(elapsed, d)
			if len(elapsed) == 3 {
				os.WriteFile(flag, nil, 0o666)
			}
			mu.Unlock()
		}
		script := fmt.Sprintf("i=0; while [ ! -e %s ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; [ -e %[1]s ]", mustQuote(flag))
		_, err := ex.Run(t.Context(), Command{Script: script, Heartbeat: hb, HeartbeatEvery: 20 * time.Millisecond})
		returned.Store(true)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(elapsed) < 3 {
			t.Fatalf("%d heartbeats", len(elapsed))
		}
		for i := 1; i < len(elapsed); i++ {
			if elapsed[i] <= elapsed[i-1] {
				t.Errorf("elapsed not increasing: %v", elapsed)
			}
		}
	})

	t.Run("WriteFile", func(t *testing.T) {
		dir := sharedDir(t)
		p := filepath.Join(dir, "it's a file")
		content := []byte("line 1\n\x00binary\xff\n$(not run)\n")
		if err := ex.WriteFile(t.Context(), File{Path: p, Content: content, Mode: 0o640}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, content, 0o640)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		if err := ex.WriteFile(t.Context(), File{Path: p, Reader: bytes.NewReader(big), Size: int64(len(big))}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, big, 0o644)
		if err := ex.WriteFile(t.Context(), File{Path: p, Content: []byte{}}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, []byte{}, 0o644)
		// Content shorter than Size: the old file stays, no temp is left.
		os.WriteFile(p, []byte("old"), 0o644)
		err := ex.WriteFile(t.Context(), File{Path: p, Reader: strings.NewReader("short"), Size: 100})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("short content: %v", err)
		}
		checkFile(t, p, []byte("old"), 0o644)
		if err := ex.WriteFile(t.Context(), File{Path: "relative/path", Content: content}); !IsTerminal(err) {
			t.Errorf("relative path: %v", err)
		}
		if err := ex.WriteFile(t.Context(), File{Path: filepath.Join(dir, "missing", "x"), Content: content}); !errors.As(err, &ee) {
			t.Errorf("missing directory: %v", err)
		}
		// Cancelled while the content is still coming: the old file stays
		// and the temporary file is removed.
		ctx, cancel := context.WithCancel(t.Context())
		r := &blockingReader{data: []byte("partial"), block: ctx.Done(), started: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- ex.WriteFile(ctx, File{Path: p, Reader: r, Size: 1 << 20}) }()
		<-r.started
		cancel()
		if err := <-done; !errors.Is(err, ErrCanceled) {
			t.Fatalf("canceled upload: %v", err)
		}
		checkFile(t, p, []byte("old"), 0o644)
		eventually(t, 5*time.Second, "temporary file removed", func() bool {
			ents, _ := os.ReadDir(dir)
			return len(ents) == 1
		})
	})
}

func checkFile(t testing.TB, p string, want []byte, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes differ from the %d written", p, len(got), len(want))
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), mode)
	}
}

// blockingReader returns data, then blocks until block is closed.
type blockingReader struct {
	data    []byte
	block   <-chan struct{}
	started chan struct{}
	once    sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.once.Do(func() { close(r.started) })
	<-r.block
	return 0, context.Canceled
}
