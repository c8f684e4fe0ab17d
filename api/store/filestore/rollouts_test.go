package filestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
)

// The rules of store.Rollouts are tested by storetest.RunRollouts
// (TestRolloutConformance); the tests here are about the files: what
// survives a restart, a torn log line, unreadable records.

func TestRolloutsReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []*api.Rollout{
		storetest.Rollout("web-1-aaaa0000", "web", 1, 0),
		storetest.Rollout("web-2-aaaa0000", "web", 2, 60),
		storetest.Rollout("web-2-bbbb0000", "web", 2, 120),
	} {
		if err := s.CreateRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	line := func(seq int64) api.LogLine {
		return api.LogLine{Seq: seq, Node: "n1", Stream: api.StreamStdout, Time: api.NewTime(t0),
			Text: fmt.Sprintf("line %d: %s", seq, strings.Repeat("x", 100))}
	}
	lines := func(from, to int64) []api.LogLine {
		var out []api.LogLine
		for seq := from; seq <= to; seq++ {
			out = append(out, line(seq))
		}
		return out
	}
	const id = "web-2-aaaa0000"
	// Enough lines for several index marks.
	for from := int64(1); from <= 1000; from += 250 {
		if err := s.AppendLogs(ctx, id, lines(from, from+249)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.ListRollouts(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.AppendLogs(ctx, id, lines(1001, 1001)); !errors.Is(err, errClosed) {
		t.Fatalf("append after close: err = %v, want errClosed", err)
	}

	// A crash in the middle of an append leaves a torn line.
	f, err := os.OpenFile(s.logPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":1001,"stream":"std`)
	f.Close()

	s = open(t, dir)
	after, err := s.ListRollouts(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("rollouts after reopen (-before +after):\n%s", diff)
	}
	// Reading after reopen uses the index built from the file.
	for _, c := range []struct {
		after int64
		limit int
		want  []api.LogLine
	}{
		{0, 0, lines(1, 1000)},
		{0, 3, lines(1, 3)},
		{500, 2, lines(501, 502)},
		{998, 0, lines(999, 1000)},
		{1000, 0, nil},
	} {
		got, err := s.Logs(ctx, id, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("logs after %d, limit %d, after reopen (-want +got):\n%s", c.after, c.limit, diff)
		}
	}
	if data, err := os.ReadFile(s.logPath(id)); err != nil || !strings.HasSuffix(string(data), "\n") {
		t.Fatalf("the torn line was not cut off: %v", err)
	}
	if err := s.AppendLogs(ctx, id, lines(1000, 1000)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("seq must continue after reopen: %v", err)
	}
	if err := s.AppendLogs(ctx, id, lines(1001, 1002)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Logs(ctx, id, 999, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lines(1000, 1002), got); diff != "" {
		t.Fatalf("logs after repair (-want +got):\n%s", diff)
	}
}

// A torn line found by an append (not a read) after reopen is cut off too.
func TestRolloutLogTornBeforeAppend(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	const id = "web-1-aaaa0000"
	if err := s.CreateRollout(ctx, storetest.Rollout(id, "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	l1 := api.LogLine{Seq: 1, Stream: api.StreamBakery, Text: "one"}
	l2 := api.LogLine{Seq: 2, Stream: api.StreamBakery, Text: "two"}
	if err := s.AppendLogs(ctx, id, []api.LogLine{l1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(s.logPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":2,"str`)
	f.Close()
	s = open(t, dir)
	if err := s.AppendLogs(ctx, id, []api.LogLine{l2}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Logs(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]api.LogLine{l1, l2}, got); diff != "" {
		t.Fatalf("logs (-want +got):\n%s", diff)
	}
}

func TestRolloutCorruptAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.CreateRollout(t.Context(), &api.Rollout{ID: "r1", Deployment: "web"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, data := range map[string]string{
		"r1.json": `{"id": "r1", "deployment": "web"`,
		"r2.json": `{"id": "other", "deployment": "web"}`,
	} {
		path := s.dir + "/rollouts/" + name
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, WithLogger(testLogger(t)))
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: open: err = %v, want ErrCorrupt naming the file", name, err)
		}
		os.Remove(path)
	}
}

// A record file whose name is not a rollout ID (as an older store
// accepted) is left alone and not served.
func TestRolloutFileWithInvalidIDIgnored(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.Close()
	path := filepath.Join(dir, rolloutsDir, "Web_1.json")
	if err := os.WriteFile(path, []byte(`{"id": "Web_1", "deployment": "web"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if list, err := s.ListRollouts(t.Context(), "web", 0); err != nil || len(list) != 0 {
		t.Fatalf("list: %v, %v; want none", list, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file was removed: %v", err)
	}
}

// DeleteRollout removes both files: the rollout stays gone after a
// restart, and a delete racing appends leaves no log file behind.
func TestRolloutDeleteFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	for _, id := range []string{"web-1-aaaa0000", "web-2-aaaa0000"} {
		if err := s.CreateRollout(ctx, storetest.Rollout(id, "web", 1, 0)); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendLogs(ctx, id, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "x"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Appends run while the rollout is deleted: each either lands before
	// the delete or fails with ErrNotFound.
	const id = "web-1-aaaa0000"
	done := make(chan error, 1)
	go func() {
		for seq := int64(2); ; seq++ {
			err := s.AppendLogs(ctx, id, []api.LogLine{{Seq: seq, Stream: api.StreamBakery, Text: "y"}})
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	if err := s.DeleteRollout(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("append racing a delete: %v", err)
	}
	for _, p := range []string{s.rolloutPath(id), s.logPath(id)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after delete: %v, want it gone", p, err)
		}
	}
	s.Close()
	s = open(t, dir)
	if _, err := s.GetRollout(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted rollout after reopen: err = %v", err)
	}
	if lines, err := s.Logs(ctx, "web-2-aaaa0000", 0, 0); err != nil || len(lines) != 1 {
		t.Fatalf("the other rollout's log after reopen: %v, %v", lines, err)
	}
}

// appendLogLine writes what json.Marshal writes for a log line.
func TestAppendLogLine(t *testing.T) {
	// A new field in api.LogLine must be written by appendLogLine too.
	var fields []string
	rt := reflect.TypeFor[api.LogLine]()
	for i := range rt.NumField() {
		fields = append(fields, rt.Field(i).Name+" "+string(rt.Field(i).Tag))
	}
	want := []string{`Seq json:"seq"`, `Node json:"node,omitempty"`, `Stream json:"stream"`, `Time json:"time"`, `Text json:"text"`}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Fatalf("api.LogLine changed: update appendLogLine (-known +now):\n%s", diff)
	}
	at := api.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC))
	zone := time.FixedZone("x", -7*3600)
	all := ""
	for b := range 256 {
		all += string(rune(b)) + string([]byte{byte(b)})
	}
	for _, l := range []api.LogLine{
		{Seq: 1, Node: "n1", Stream: api.StreamStdout, Time: at, Text: "plain"},
		{Seq: 1<<63 - 1, Stream: api.StreamBakery, Text: ""},
		{Seq: -5, Node: "", Stream: "", Time: &api.Time{}, Text: ""},
		{Seq: 2, Node: "n<1>", Stream: "std&err", Time: &api.Time{Time: time.Date(2026, 3, 4, 5, 6, 7, 890, zone)}, Text: `"quoted" \back\slash <script>&amp;`},
		{Seq: 3, Text: "\x00\x01\b\f\n\r\t\x1b\x7f ünïcödé 日本語 🍞 \u2028\u2029 \ufffd \xff\xfe \xe2\x82"},
		{Seq: 4, Text: all},
		{Seq: 5, Time: &api.Time{Time: time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)}, Text: "far"},
	} {
		checkAppendLogLine(t, l)
	}
}

func checkAppendLogLine(t *testing.T, l api.LogLine) {
	t.Helper()
	want, err := json.Marshal(l)
	if err != nil {
		t.Skipf("json.Marshal: %v", err)
	}
	if got := appendLogLine(nil, &l); string(got) != string(want) {
		t.Fatalf("appendLogLine(%+v)\n got %s\nwant %s", l, got, want)
	}
}

func FuzzAppendLogLine(f *testing.F) {
	f.Add(int64(1), "n1", "stdout", int64(0), "plain")
	f.Add(int64(-1), "", "\x00", int64(1e9), "<&>\u2028\xff\"\\")
	f.Fuzz(func(t *testing.T, seq int64, node, stream string, unix int64, text string) {
		l := api.LogLine{Seq: seq, Node: node, Stream: stream, Text: text}
		if unix != 0 {
			l.Time = api.NewTime(time.Unix(unix%(1<<40), 0))
		}
		checkAppendLogLine(t, l)
	})
}
