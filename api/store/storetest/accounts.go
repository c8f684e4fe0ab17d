package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api/store"
)

// RunAccounts runs the conformance suite for store.Accounts. newStore must
// return a new, empty store that implements store.Accounts. Like
// RunSettings it is not part of Run: a store that keeps accounts calls it
// from its own test.
//
// Beyond what the store.Accounts comments say, the suite pins down:
//
//   - Times come back in UTC, equal to what was stored at second
//     precision.
//   - Of 8 concurrent CreateUser calls for one name exactly one succeeds.
//   - Deleting a user deletes their sessions and leaves other users'.
//   - Accounts are not objects: writing one sends no Watch event.
func RunAccounts(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, a store.Accounts)
	}{
		{"Users", testUsers},
		{"InvalidUsers", testInvalidUsers},
		{"ConcurrentCreateUser", testConcurrentCreateUser},
		{"Sessions", testSessions},
		{"DeleteUserDeletesSessions", testDeleteUserSessions},
		{"ExpiredSessions", testExpiredSessions},
		{"NoEvents", testAccountsNoEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			a, ok := s.(store.Accounts)
			if !ok {
				t.Fatalf("%T does not implement store.Accounts", s)
			}
			tc.fn(t, s, a)
		})
	}
}

var accountTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func mustCreateUser(t *testing.T, a store.Accounts, name string) store.User {
	t.Helper()
	u := store.User{Name: name, PasswordHash: "$2a$10$hash-of-" + name, CreatedAt: accountTime}
	if err := a.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	return u
}

func testUsers(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	if us, err := a.ListUsers(ctx); err != nil || len(us) != 0 {
		t.Fatalf("ListUsers on an empty store = %v, %v; want none", us, err)
	}
	bob := mustCreateUser(t, a, "bob")
	alice := mustCreateUser(t, a, "alice")
	err := a.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "other", CreatedAt: accountTime})
	if !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("CreateUser(bob) again: err = %v, want ErrAlreadyExists", err)
	}
	got, err := a.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(bob, got); d != "" {
		t.Fatalf("GetUser(bob) (-want +got):\n%s", d)
	}
	us, err := a.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.User{alice, bob}, us); d != "" {
		t.Fatalf("ListUsers (-want +got):\n%s", d)
	}
	if err := a.SetPassword(ctx, "bob", "new-hash"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetUser(ctx, "bob"); got.PasswordHash != "new-hash" {
		t.Fatalf("after SetPassword: hash %q", got.PasswordHash)
	}
	if err := a.SetPassword(ctx, "carol", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetPassword(carol): err = %v, want ErrNotFound", err)
	}
	if err := a.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser(bob) after delete: err = %v, want ErrNotFound", err)
	}
	if err := a.DeleteUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteUser(bob) again: err = %v, want ErrNotFound", err)
	}
}

func testInvalidUsers(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	for _, u := range []store.User{
		{Name: "", PasswordHash: "h"},
		{Name: "Bob", PasswordHash: "h"},
		{Name: "<script>", PasswordHash: "h"},
		{Name: "../etc", PasswordHash: "h"},
		{Name: "ok", PasswordHash: ""},
	} {
		if err := a.CreateUser(ctx, u); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser(%q, hash %q): err = %v, want ErrInvalid", u.Name, u.PasswordHash, err)
		}
	}
	if _, err := a.GetUser(ctx, "../x"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("GetUser(../x): err = %v, want ErrInvalid", err)
	}
	if us, _ := a.ListUsers(ctx); len(us) != 0 {
		t.Fatalf("invalid users were stored: %v", us)
	}
	err := a.CreateSession(ctx, store.Session{ID: "id", CSRF: "c", User: "nobody", ExpiresAt: accountTime})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateSession for an unknown user: err = %v, want ErrInvalid", err)
	}
	mustCreateUser(t, a, "bob")
	for _, x := range []store.Session{{ID: "", CSRF: "c", User: "bob"}, {ID: "i", CSRF: "", User: "bob"}} {
		if err := a.CreateSession(ctx, x); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateSession(%+v): err = %v, want ErrInvalid", x, err)
		}
	}
}

func testConcurrentCreateUser(t *testing.T, s store.Store, a store.Accounts) {
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.CreateUser(t.Context(), store.User{Name: "admin", PasswordHash: fmt.Sprint("h", i), CreatedAt: accountTime})
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("CreateUser %d and %d both succeeded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Fatalf("CreateUser %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no CreateUser succeeded")
	}
	u, err := a.GetUser(t.Context(), "admin")
	if err != nil || u.PasswordHash != fmt.Sprint("h", won) {
		t.Fatalf("GetUser(admin) = %+v, %v; want the winner's hash h%d", u, err, won)
	}
}

func testSessions(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	mustCreateUser(t, a, "bob")
	x := store.Session{ID: "hash-1", User: "bob", CSRF: "csrf-1", CreatedAt: accountTime, ExpiresAt: accountTime.Add(time.Hour)}
	if err := a.CreateSession(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSession(ctx, x); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("CreateSession again: err = %v, want ErrAlreadyExists", err)
	}
	got, err := a.GetSession(ctx, "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(x, got); d != "" {
		t.Fatalf("GetSession (-want +got):\n%s", d)
	}
	if _, err := a.GetSession(ctx, "hash-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(unknown): err = %v, want ErrNotFound", err)
	}
	if err := a.DeleteSession(ctx, "hash-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, "hash-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession after delete: err = %v, want ErrNotFound", err)
	}
	if err := a.DeleteSession(ctx, "hash-1"); err != nil {
		t.Fatalf("DeleteSession of a missing session: %v, want nil", err)
	}
}

func testDeleteUserSessions(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	mustCreateUser(t, a, "bob")
	mustCreateUser(t, a, "alice")
	for _, x := range []store.Session{
		{ID: "b1", User: "bob", CSRF: "c", CreatedAt: accountTime, ExpiresAt: accountTime.Add(time.Hour)},
		{ID: "b2", User: "bob", CSRF: "c", CreatedAt: accountTime, ExpiresAt: accountTime.Add(time.Hour)},
		{ID: "a1", User: "alice", CSRF: "c", CreatedAt: accountTime, ExpiresAt: accountTime.Add(time.Hour)},
	} {
		if err := a.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b1", "b2"} {
		if _, err := a.GetSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s of a deleted user: err = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := a.GetSession(ctx, "a1"); err != nil {
		t.Errorf("alice's session: %v", err)
	}
}

func testExpiredSessions(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	mustCreateUser(t, a, "bob")
	for i, exp := range []time.Duration{-time.Hour, 0, time.Second, time.Hour} {
		x := store.Session{ID: fmt.Sprint("s", i), User: "bob", CSRF: "c", CreatedAt: accountTime.Add(-2 * time.Hour), ExpiresAt: accountTime.Add(exp)}
		if err := a.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	n, err := a.DeleteExpiredSessions(ctx, accountTime)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 2 (expired before and at now)", n, err)
	}
	for i, want := range []bool{false, false, true, true} {
		_, err := a.GetSession(ctx, fmt.Sprint("s", i))
		if got := err == nil; got != want {
			t.Errorf("session s%d kept = %t (err %v), want %t", i, got, err, want)
		}
	}
	if n, err := a.DeleteExpiredSessions(ctx, accountTime); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredSessions again = %d, %v; want 0", n, err)
	}
}

func testAccountsNoEvents(t *testing.T, s store.Store, a store.Accounts) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, a, "bob")
	if err := a.CreateSession(ctx, store.Session{ID: "x", User: "bob", CSRF: "c", CreatedAt: accountTime, ExpiresAt: accountTime.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// An object written after the accounts must be the first event.
	mustCreate(t, s, Node("after", "10.0.0.1", nil))
	select {
	case ev := <-ch:
		if ev.Object.GetObjectMeta().Name != "after" {
			t.Fatalf("first event is about %s, want the node written after the accounts", ev.Object.GetObjectMeta().Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the node")
	}
}
