//go:build !linux

package main

import (
	"errors"
	"os"
)

func makeRaw(int) (func(), error) {
	return nil, errors.New("a terminal (-it) is supported on Linux only")
}
func terminalSize(int) (int, int) { return 0, 0 }
func isTerminal(*os.File) bool    { return false }

var winchSignal os.Signal
