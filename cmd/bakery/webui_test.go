package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/store/filestore"
)

// bakery admin create writes a user with a bcrypt hash of the password
// read from stdin into the file store; a bad name or a short password is a
// usage error that stores nothing; a taken name fails.
func TestAdminCreate(t *testing.T) {
	dir := t.TempDir()
	admin := func(stdin string, args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"admin", "create", "--data", dir, "--database-url", ""}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := admin("short\n", "bob"); code == 0 || !strings.Contains(out, "at least 8") {
		t.Fatalf("short password: %d %s", code, out)
	}
	if code, out := admin("long enough pw\n", "Bob!"); code == 0 || !strings.Contains(out, "user name") {
		t.Fatalf("bad name: %d %s", code, out)
	}
	if code, out := admin("long enough pw\n", "bob"); code != 0 || !strings.Contains(out, "user bob created") {
		t.Fatalf("create: %d %s", code, out)
	}
	if code, out := admin("another password\n", "bob"); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("create twice: %d %s", code, out)
	}
	st, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	us, err := st.ListUsers(t.Context())
	if err != nil || len(us) != 1 || us[0].Name != "bob" {
		t.Fatalf("users: %+v %v", us, err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(us[0].PasswordHash), []byte("long enough pw")); err != nil {
		t.Fatalf("stored hash does not match the password: %v", err)
	}
}
