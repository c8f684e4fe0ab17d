package main

import (
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/reconciler/notify"
)

func TestNotifyTargets(t *testing.T) {
	got, err := notifyTargets([]string{"url=https://hooks.example/x,format=slack,on=failures", "url=http://127.0.0.1:9/e"}, "url=https://ignored.example/")
	want := []notify.Target{{URL: "https://hooks.example/x", Format: "slack", On: "failures"}, {URL: "http://127.0.0.1:9/e", Format: "json", On: "all"}}
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("flags: %+v, %v", got, err)
	}
	got, err = notifyTargets(nil, " url=https://a.example/1,on=failures  url=https://b.example/2,format=discord ")
	if err != nil || len(got) != 2 || got[0].On != "failures" || got[1].Format != "discord" {
		t.Fatalf("env: %+v, %v", got, err)
	}
	if got, err := notifyTargets(nil, ""); err != nil || len(got) != 0 {
		t.Fatalf("none: %+v, %v", got, err)
	}
	_, err = notifyTargets([]string{"url=https://hooks.example/x?token=s3cret,format=teams"}, "")
	if err == nil || !strings.Contains(err.Error(), "--notify: target 1 of 1") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad target: %v", err)
	}
}

func TestServerNotifyFlagsRejected(t *testing.T) {
	isolate(t)
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"--notify", "url=ftp://x/y"}, {"--notify", "format=slack"}, {"--disk-low-percent", "-1"}, {"--disk-low-percent", "100"},
	} {
		r := bakery(t, "", append([]string{"server", "--data", data, "--listen", "127.0.0.1:0"}, args...)...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "error: ") {
			t.Errorf("server %v: %+v, want an error", args, r)
		}
	}
}

func TestServerNotifyFlags(t *testing.T) {
	isolate(t)
	t.Setenv("BAKERY_NOTIFY", "url=https://env.example/hook")
	data := filepath.Join(t.TempDir(), "data")
	_, stderr, stop := startServerCmd(t, "--data", data, "--notify", "url=http://127.0.0.1:9/hook?token=s3cret,format=slack,on=failures", "--disk-low-percent", "5")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr())
	}
	out := stderr()
	if !strings.Contains(out, "http://127.0.0.1:9 (slack, failures)") || strings.Contains(out, "env.example") || strings.Contains(out, "s3cret") {
		t.Fatalf("targets logged:\n%s", out)
	}
}
