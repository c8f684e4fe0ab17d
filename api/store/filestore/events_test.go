package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
)

func TestEventConformance(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

// Events survive a restart; a torn last line is cut off; files are 0600
// and trimmed to the limit.
func TestEventsFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	var want []*api.Event
	for i := range store.MaxEventsPerObject + 3 {
		e := storetest.Event(fmt.Sprintf("e%04d", i), "Deployment/hello", i)
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append([]*api.Event{e}, want...)
	}
	want = want[:store.MaxEventsPerObject]
	path := filepath.Join(dir, "events", "deployment-hello.jsonl")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	s.Close()

	// A torn line, as a crash in the middle of an append leaves it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":"torn","obj`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = open(t, dir)
	got, err := s.ListEvents(ctx, "Deployment/hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if err := s.AddEvent(ctx, storetest.Event("after", "Deployment/hello", 100000)); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListEvents(ctx, "Deployment/hello", 1)
	if err != nil || len(got) != 1 || got[0].ID != "after" {
		t.Fatalf("after a new add: %v, %v", got, err)
	}
}
