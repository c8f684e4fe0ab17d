package sshexec

import "testing"

func TestLocal(t *testing.T) {
	testExecutor(t, NewLocal())
}

func TestInProcessSSH(t *testing.T) {
	ex, _, _ := inProcess(t)
	testExecutor(t, ex)
}
