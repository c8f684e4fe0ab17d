package sshexec

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The benchmarks run against a real sshd started for them, as the user
// described in sshd_test.go (scripts/bench-ssh.sh sets SSHEXEC_TEST_USER to
// a user with Debian's default dotfiles). Each works with -benchtime=1x.

// BenchmarkWarmCommand: one command (bootstrap and watcher included) over
// a pooled, warm connection.
func BenchmarkWarmCommand(b *testing.B) {
	ex, _, _ := realSSHD(b)
	if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmCommandIdle: one command over a warm connection whose spare
// session is ready, as after a pause between commands (the pause is not
// timed): the command does not wait for sshd to start a shell.
func BenchmarkWarmCommandIdle(b *testing.B) {
	ex, _, p := realSSHD(b)
	if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		settle(p)
		time.Sleep(pause)
		b.StartTimer()
		if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}

// settle waits until no spare session is being opened on p's connections.
// A spare counts as opened once its exec request was sent: its shell may
// still be starting on the node (see pause).
func settle(p *Pool) {
	p.mu.Lock()
	conns := make([]*poolConn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		filled, filling := c.filled, c.filling
		c.mu.Unlock()
		if filling {
			<-filled
		}
	}
}

// pause is the untimed pause between two operations of the benchmarks that
// measure a pool whose spare sessions are ready: long enough, on a loaded
// 2-core machine, for sshd to start their shells.
const pause = 50 * time.Millisecond

// BenchmarkRunPayload: the control plane's own work to frame a typical
// command (environment, directory, script).
func BenchmarkRunPayload(b *testing.B) {
	cmd := Command{Script: "cd app && exec ./deploy.sh \"$REV\"\n", Env: map[string]string{"REV": "0123456789abcdef", "APP": "hello", "PORT": "8080"}, Dir: "/var/lib/bakery/apps/hello"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := runPayload(cmd, -1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrent20: 20 commands at once over one warm connection
// (sshd's MaxSessions is 10, so they queue); one op is the whole batch.
func BenchmarkConcurrent20(b *testing.B) {
	ex, _, _ := realSSHD(b)
	if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		runBatch(b, func(int) Executor { return ex }, 20)
	}
}

func runBatch(b *testing.B, ex func(i int) Executor, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := ex(i).Run(b.Context(), Command{Script: "true"}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// BenchmarkStream100kLines: a command printing 100,000 lines into a Sink
// that counts them; reports lines/s.
func BenchmarkStream100kLines(b *testing.B) {
	ex, _, _ := realSSHD(b)
	const n = 100000
	var count atomic.Int64
	sink := SinkFunc(func(Line) { count.Add(1) })
	cmd := Command{Script: "seq " + strconv.Itoa(n), Sink: sink, CaptureLimit: -1}
	if _, err := ex.Run(b.Context(), Command{Script: "true"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	began := time.Now()
	for b.Loop() {
		if _, err := ex.Run(b.Context(), cmd); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(began)
	if got := count.Load(); got != int64(n*b.N) {
		b.Fatalf("%d lines, want %d", got, n*b.N)
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "lines/s")
}

// twentyHosts starts two sshds listening on 127.0.0.1-10 and 127.0.0.11-20
// (sshd takes at most 16 listen addresses) and returns 20 targets, one per
// address: 20 "hosts", 20 connections.
func twentyHosts(b *testing.B) (ssh.Signer, []Target) {
	signer := newSigner(b)
	var ts []Target
	for _, first := range []int{1, 11} {
		var extra strings.Builder
		for i := first; i < first+10; i++ {
			fmt.Fprintf(&extra, "ListenAddress 127.0.0.%d\n", i)
		}
		s := startSSHD(b, []ssh.PublicKey{signer.PublicKey()}, extra.String())
		port := portOf(b, s.addr)
		for i := first; i < first+10; i++ {
			tg := s.target()
			tg.Addr = fmt.Sprintf("127.0.0.%d:%d", i, port)
			ts = append(ts, tg)
		}
	}
	return signer, ts
}

// BenchmarkTwentyHostsCold: one command on 20 hosts at once from a new
// Pool: dial, handshake, authentication and command for each.
func BenchmarkTwentyHostsCold(b *testing.B) {
	signer, ts := twentyHosts(b)
	b.ResetTimer()
	for b.Loop() {
		p, err := NewPool(Config{Signer: signer})
		if err != nil {
			b.Fatal(err)
		}
		runBatch(b, func(i int) Executor { return p.Executor(ts[i]) }, len(ts))
		p.Close()
	}
}

// BenchmarkTwentyHostsWarm: one command on 20 hosts at once over the
// Pool's open connections, as the control plane runs: between two rounds
// (not timed) the spare sessions that the previous round used are
// replaced.
func BenchmarkTwentyHostsWarm(b *testing.B) {
	signer, ts := twentyHosts(b)
	p := newTestPool(b, signer, nil)
	runBatch(b, func(i int) Executor { return p.Executor(ts[i]) }, len(ts))
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		settle(p)
		time.Sleep(pause)
		b.StartTimer()
		runBatch(b, func(i int) Executor { return p.Executor(ts[i]) }, len(ts))
	}
}

// BenchmarkTwentyHostsBackToBack: as BenchmarkTwentyHostsWarm, but each
// round starts as soon as the previous one ended, so the spare sessions
// being replaced compete with it for the CPU.
func BenchmarkTwentyHostsBackToBack(b *testing.B) {
	signer, ts := twentyHosts(b)
	p := newTestPool(b, signer, nil)
	runBatch(b, func(i int) Executor { return p.Executor(ts[i]) }, len(ts))
	b.ResetTimer()
	for b.Loop() {
		runBatch(b, func(i int) Executor { return p.Executor(ts[i]) }, len(ts))
	}
}

// BenchmarkLocalCommand: one command through the local executor.
func BenchmarkLocalCommand(b *testing.B) {
	l := NewLocal()
	for b.Loop() {
		if _, err := l.Run(b.Context(), Command{Script: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}
