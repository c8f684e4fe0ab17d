package sshexec_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"bakery.dev/bakery/sshexec"
)

func Example() {
	// Bakery's key, stored once (encrypted) and parsed at start.
	privatePEM, authorizedKey, err := sshexec.GenerateKey("bakery")
	if err != nil {
		log.Fatal(err)
	}
	_ = authorizedKey // goes into the node's ~bakery-agent/.ssh/authorized_keys
	signer, err := sshexec.ParsePrivateKey(privatePEM)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{
		Signer: signer,
		HostKeySeen: func(t sshexec.Target, hostKey string) {
			fmt.Println("pin", t.Addr, hostKey) // record in the Node's status
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	node := pool.Executor(sshexec.Target{Addr: "10.77.0.11:22", User: "bakery-agent", HostKey: "ssh-ed25519 AAAA..."})
	ctx := context.Background()
	res, err := node.Run(ctx, sshexec.Command{
		Script:  "cd \"$APP_DIR\" && git fetch --quiet && git rev-parse HEAD",
		Env:     map[string]string{"APP_DIR": "/var/lib/bakery/apps/hello/repo.git"},
		Timeout: time.Minute,
		Sink: sshexec.SinkFunc(func(l sshexec.Line) {
			fmt.Println(l.Seq, l.Stream, l.Text) // into the rollout log
		}),
	})
	var exit *sshexec.ExitError
	switch {
	case sshexec.IsTerminal(err):
		// host key mismatch or invalid command: mark the node Stalled
	case errors.As(err, &exit):
		fmt.Println("script failed with status", exit.Code)
	case err != nil:
		// connection, auth, timeout, cancel: retry with backoff
	default:
		fmt.Printf("commit %s", res.Stdout)
	}
}
