package deployment

import (
	"testing"

	"bakery.dev/bakery/api"
)

func TestPersistentStatus(t *testing.T) {
	s := &api.DeploymentSpec{Persistent: []api.Persistent{{Path: "uploads", Size: "1Ki"}, {Path: "db"}, {Path: "missing"}}}
	got := persistentStatus(s, map[string]int64{"uploads": 4096, "db": -1})
	want := []api.PersistentStatus{{Path: "uploads", Bytes: 4096, Size: "1Ki", OverSize: true}, {Path: "db", Bytes: -1}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestSpecHashLimits: limits are part of the revision (new units), the
// advisory size is not, and a spec without them keeps its old hash.
func TestSpecHashLimits(t *testing.T) {
	base := api.DeploymentSpec{Run: api.Run{Command: "x"}}
	h0 := specHash(&base)
	withSize := base
	withSize.Persistent = []api.Persistent{{Path: "a", Size: "1G"}}
	sizeOnly := withSize
	sizeOnly.Persistent = []api.Persistent{{Path: "a", Size: "2G"}}
	if specHash(&withSize) == h0 || specHash(&withSize) != specHash(&sizeOnly) {
		t.Error("a persistent path must change the hash, its size must not")
	}
	mem := base
	mem.Resources = &api.Resources{Memory: "256Mi"}
	if specHash(&mem) == h0 {
		t.Error("a memory limit must change the hash")
	}
	empty := base
	empty.Resources = &api.Resources{}
	if specHash(&empty) != h0 {
		t.Error("empty resources changed the hash")
	}
}
