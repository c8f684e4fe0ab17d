// Command bakery is Bakery's one binary: `bakery server` runs the control
// plane; every other command (apply, diff, get, describe, delete, login,
// version) is a client of its HTTP API (docs/api.md).
//
// Exit codes follow kubectl: 0 success; 1 an error (and, for `bakery
// diff`, differences found); for `bakery diff` an error is 2.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, the default handling comes back: a
		// second Ctrl-C ends a graceful shutdown that takes too long.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
