package sshexec

import (
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
