package sshexec

import "syscall"

func mkfifo(p string) error {
	if err := syscall.Mkfifo(p, 0o666); err != nil {
		return err
	}
	return syscall.Chmod(p, 0o666)
}
