package nodescript

import (
	"testing"

	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// TestParseOOMAndPersistent: observe's oom and persistent lines.
func TestParseOOMAndPersistent(t *testing.T) {
	o, err := ParseAppObservation("unit blue active\noom blue\noom purple\npersistent uploads 12\npersistent var/db -\n")
	if err != nil {
		t.Fatal(err)
	}
	if !o.OOMKilled["blue"] || o.OOMKilled["green"] || len(o.OOMKilled) != 1 {
		t.Errorf("OOMKilled %v, want blue only", o.OOMKilled)
	}
	if o.Persistent["uploads"] != 12*1024 || o.Persistent["var/db"] != -1 || len(o.Persistent) != 2 {
		t.Errorf("Persistent %v", o.Persistent)
	}
	if _, err := ParseAppObservation("persistent ../etc 1\n"); err == nil {
		t.Error("a persistent line with a bad path was accepted")
	}
}

// TestLimitsReachScripts: the limits become the helper's options (LIMITS)
// and docker's (DOCKER_LIMITS, PERSIST); invalid ones are refused.
func TestLimitsReachScripts(t *testing.T) {
	l := nf.Limits{Persistent: []string{"uploads", "var/db"}, MemoryBytes: 256 << 20, CPUMilli: 1500, Tasks: 64}
	rel := "0123456789abcdef0123456789abcdef01234567"
	cmd, err := SystemdInstallUnit.Command(SystemdUnitInput{Unit: nf.Slot{App: "hello", Slot: "blue", Release: rel, Port: 20000, Limits: l}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cmd.Env["LIMITS"], "--persist uploads --persist var/db --memory 268435456 --cpu 1500 --tasks 64"; got != want {
		t.Errorf("LIMITS %q, want %q", got, want)
	}
	cmd, err = DockerStart.Command(DockerStartInput{App: "hello", Slot: "blue", Commit: rel, Release: rel, Revision: 1, Port: 20000, Network: "bridge", StopTimeout: 10, Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cmd.Env["DOCKER_LIMITS"], "--memory 268435456 --cpus 1.500 --pids-limit 64"; got != want {
		t.Errorf("DOCKER_LIMITS %q, want %q", got, want)
	}
	if got, want := cmd.Env["PERSIST"], nf.DockerVolume("hello", "uploads")+":uploads "+nf.DockerVolume("hello", "var/db")+":var/db"; got != want {
		t.Errorf("PERSIST %q, want %q", got, want)
	}
	for _, bad := range []nf.Limits{{Persistent: []string{"../etc"}}, {MemoryBytes: 1}, {CPUMilli: 5}, {Tasks: -1}} {
		if _, err := SystemdInstallUnit.Command(SystemdUnitInput{Unit: nf.Slot{App: "hello", Slot: "blue", Release: rel, Port: 20000, Limits: bad}}); err == nil {
			t.Errorf("limits %+v accepted", bad)
		}
		if _, err := DockerStart.Command(DockerStartInput{App: "hello", Slot: "blue", Commit: rel, Release: rel, Port: 20000, Network: "bridge", StopTimeout: 10, Limits: bad}); err == nil {
			t.Errorf("docker limits %+v accepted", bad)
		}
	}
}
