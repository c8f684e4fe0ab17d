package sshexec

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocal(t *testing.T) {
	testExecutor(t, NewLocal())
}

func TestInProcessSSH(t *testing.T) {
	ex, _, _ := inProcess(t)
	testExecutor(t, ex)
}

// TestLocalBusybox runs the shared suite with busybox's tools first in PATH
// (busybox's head reads ahead of what it prints; the bootstrap must not rely
// on it). It needs the busybox package and skips without it.
func TestLocalBusybox(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("busybox not installed (scripts/install-test-deps.sh installs it)")
		}
		t.Skip("busybox not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command(bb, "--install", "-s", dir).CombinedOutput(); err != nil {
		t.Fatalf("busybox --install: %v: %s", err, out)
	}
	if target, err := os.Readlink(filepath.Join(dir, "dd")); err != nil || !strings.Contains(target, "busybox") {
		t.Fatalf("dd is not busybox's: %q, %v", target, err)
	}
	t.Setenv("PATH", dir)
	testExecutor(t, NewLocal())
}

// A full filesystem is reported as such: the upload's error carries dd's
// own message (it was discarded, leaving "exit status 125:" with nothing
// after it) and matches ErrNoSpace, and so does a command whose error
// output says "No space left on device". dd writes to /dev/full here.
func TestNoSpace(t *testing.T) {
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\nexec " + dd + " \"$@\" of=/dev/full\n"
	if err := os.WriteFile(filepath.Join(dir, "dd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	ex := NewLocal()
	_, err = ex.Run(t.Context(), Command{Script: "dd if=/dev/zero of=/dev/full bs=1 count=1"})
	var ee *ExitError
	if !errors.As(err, &ee) || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("command on a full filesystem: %v; want an ExitError matching ErrNoSpace", err)
	}
	if _, err := ex.Run(t.Context(), Command{Script: "echo 'some other failure' >&2; exit 3"}); errors.Is(err, ErrNoSpace) {
		t.Fatalf("an ordinary failure matches ErrNoSpace: %v", err)
	}

	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	target := filepath.Join(t.TempDir(), "bundle")
	err = ex.WriteFile(t.Context(), File{Path: target, Content: []byte("content")})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "No space left on device") {
		t.Fatalf("upload to a full filesystem: %v; want dd's message, matching ErrNoSpace", err)
	}
	if strings.Contains(err.Error(), "records") {
		t.Fatalf("dd's statistics in the error: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Dir(target) + "/.*bakery*"); len(m) > 0 {
		t.Fatalf("temporary file left behind: %v", m)
	}
	t.Logf("upload error: %v", err)
}
