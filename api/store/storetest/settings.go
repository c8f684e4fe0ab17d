package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// RunSettings runs the conformance suite for store.Settings. newStore must
// return a new, empty store that implements store.Settings. Like
// RunRollouts it is not part of Run: a store that keeps settings calls it
// from its own test:
//
//	func TestSettingsConformance(t *testing.T) { storetest.RunSettings(t, newStore) }
//
// Beyond what the store.Settings comments say, the suite pins down these
// rules:
//
//   - Names: every method first checks the name with
//     store.CheckSettingName (ErrInvalid, nothing stored).
//   - Values are any bytes (NUL, invalid UTF-8), kept exactly; an empty or
//     nil value reads back as an empty, non-nil slice. Values are copies
//     both ways.
//   - Of 8 concurrent CreateSetting calls for one name exactly one
//     succeeds, the others fail with ErrAlreadyExists, and the stored value
//     is the winner's.
//   - Settings are not objects: writing one sends no Watch event.
func RunSettings(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, st store.Settings)
	}{
		{"CreateGet", testSettingCreateGet},
		{"Put", testSettingPut},
		{"Values", testSettingValues},
		{"InvalidNames", testSettingInvalidNames},
		{"ConcurrentCreate", testSettingConcurrentCreate},
		{"List", testSettingList},
		{"NoEvents", testSettingNoEvents},
	}
	if !t.Run("ImplementsSettings", func(t *testing.T) {
		if s := newStore(t); !implementsSettings(s) {
			t.Fatalf("%T does not implement store.Settings (GetSetting, CreateSetting, PutSetting)", s)
		}
	}) {
		return
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			st, ok := s.(store.Settings)
			if !ok {
				t.Fatalf("%T does not implement store.Settings", s)
			}
			tc.fn(t, s, st)
		})
	}
}

func implementsSettings(s store.Store) bool {
	_, ok := s.(store.Settings)
	return ok
}

func wantSetting(t *testing.T, st store.Settings, name string, want []byte) {
	t.Helper()
	got, err := st.GetSetting(t.Context(), name)
	if err != nil {
		t.Fatalf("GetSetting(%q): %v", name, err)
	}
	if got == nil || !bytes.Equal(got, want) {
		t.Fatalf("GetSetting(%q) = %q (nil: %t), want %q", name, got, got == nil, want)
	}
}

func testSettingCreateGet(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	if _, err := st.GetSetting(ctx, "ssh-identity"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
	in := []byte("first value")
	if err := st.CreateSetting(ctx, "ssh-identity", in); err != nil {
		t.Fatal(err)
	}
	// The store keeps its own copy.
	in[0] = 'X'
	wantSetting(t, st, "ssh-identity", []byte("first value"))
	got, _ := st.GetSetting(ctx, "ssh-identity")
	got[0] = 'Y'
	wantSetting(t, st, "ssh-identity", []byte("first value"))

	if err := st.CreateSetting(ctx, "ssh-identity", []byte("second")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second create: err = %v, want ErrAlreadyExists", err)
	}
	wantSetting(t, st, "ssh-identity", []byte("first value"))

	// Names are independent.
	if _, err := st.GetSetting(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get other: err = %v, want ErrNotFound", err)
	}
	if err := st.CreateSetting(ctx, "other", []byte("o")); err != nil {
		t.Fatal(err)
	}
	wantSetting(t, st, "other", []byte("o"))
	wantSetting(t, st, "ssh-identity", []byte("first value"))
}

func testSettingPut(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	// Put creates…
	in := []byte("one")
	if err := st.PutSetting(ctx, "a", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	wantSetting(t, st, "a", []byte("one"))
	if err := st.CreateSetting(ctx, "a", []byte("create")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("create after put: err = %v, want ErrAlreadyExists", err)
	}
	// …and replaces, with a longer or a shorter value.
	for _, v := range []string{"a much longer second value", "3", ""} {
		if err := st.PutSetting(ctx, "a", []byte(v)); err != nil {
			t.Fatal(err)
		}
		wantSetting(t, st, "a", []byte(v))
	}
	if err := st.CreateSetting(ctx, "b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSetting(ctx, "b", []byte("b2")); err != nil {
		t.Fatal(err)
	}
	wantSetting(t, st, "b", []byte("b2"))
}

func testSettingValues(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte{0, 0xff, 'a', 0xc3}, 64<<10/4)
	for name, v := range map[string][]byte{
		"all-bytes": all,
		"nul":       {0},
		"bad-utf8":  {0xc3, 0x28, 0xff},
		"big":       big,
		"empty":     {},
		"nil":       nil,
	} {
		if err := st.CreateSetting(ctx, name, v); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		wantSetting(t, st, name, v)
		if err := st.PutSetting(ctx, name, v); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		wantSetting(t, st, name, v)
	}
	long := strings.Repeat("a", store.MaxSettingNameLen)
	if err := st.CreateSetting(ctx, long, []byte("x")); err != nil {
		t.Fatalf("a %d-character name: %v", len(long), err)
	}
	wantSetting(t, st, long, []byte("x"))
}

func testSettingInvalidNames(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	for _, name := range []string{
		"", "Upper", "under_score", "a/b", "../x", "..", ".", ".hidden", "-a", "a-", "a b", "a.b",
		"tab\t", "ünï", strings.Repeat("a", store.MaxSettingNameLen+1),
	} {
		if err := st.CreateSetting(ctx, name, []byte("x")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateSetting(%q): err = %v, want ErrInvalid", name, err)
		}
		if err := st.PutSetting(ctx, name, []byte("x")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutSetting(%q): err = %v, want ErrInvalid", name, err)
		}
		if _, err := st.GetSetting(ctx, name); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("GetSetting(%q): err = %v, want ErrInvalid", name, err)
		}
	}
}

func testSettingConcurrentCreate(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	const n = 8
	for round := range 3 {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = st.CreateSetting(ctx, name, fmt.Appendf(nil, "value of creator %d", i))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("%s: creators %d and %d both won", name, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Fatalf("%s: creator %d: err = %v, want nil or ErrAlreadyExists", name, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no creator won: %v", name, errs)
		}
		wantSetting(t, st, name, fmt.Appendf(nil, "value of creator %d", winner))
	}
}

func testSettingNoEvents(t *testing.T, s store.Store, st store.Settings) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSetting(ctx, "quiet", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := st.PutSetting(ctx, "quiet", []byte("2")); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, Node("after", "10.0.0.1", nil))
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		if ev.Type != store.Added || api.Ref(ev.Object) != api.KindNode+"/after" {
			t.Fatalf("first event %s %s, want ADDED Node/after (settings send no events)", ev.Type, api.Ref(ev.Object))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
}

func testSettingList(t *testing.T, _ store.Store, st store.Settings) {
	ctx := t.Context()
	if l, err := st.ListSettings(ctx, ""); err != nil || len(l) != 0 {
		t.Fatalf("empty store: %v, %v", l, err)
	}
	for _, n := range []string{"webhook-b", "webhook-a", "github-token-x", "webhook"} {
		if err := st.PutSetting(ctx, n, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string]string{
		"":         "github-token-x,webhook,webhook-a,webhook-b",
		"webhook-": "webhook-a,webhook-b",
		"nothing":  "",
	} {
		l, err := st.ListSettings(ctx, prefix)
		if err != nil || strings.Join(l, ",") != want {
			t.Errorf("ListSettings(%q) = %v, %v; want %s", prefix, l, err, want)
		}
	}
}
