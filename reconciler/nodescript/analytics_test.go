package nodescript

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
)

// FuzzParseAnalytics feeds the parser what a node could print (a node is
// not trusted to be well-formed): it must never panic, never return more
// data than announced, nor a negative count. (The reconciler's fuzz test
// also merges what was parsed.)
func FuzzParseAnalytics(f *testing.F) {
	f.Add([]byte("@app web\n@file 12 40 0 20\n1700000000.123|200|5|0.001\n\n@disk 1 2 3 4\n"))
	f.Add([]byte("@app web\n@old 11 30 10 20\n1700000000.123|404|5|0.001\n\n@file 12 5 0 5\n1|2|3\n@disk 0 0 0 0\n"))
	f.Add([]byte("@app a\n@file 1 2 3 -4\n"))
	f.Add([]byte("@file 1 1 1 1\nx\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		found, err := ParseAnalytics(out)
		if err != nil {
			return
		}
		for _, ar := range found {
			for _, b := range ar.Blocks {
				if b.WantN < 0 || b.Offset < 0 || b.Size < 0 || int64(len(b.Data)) > b.WantN {
					t.Fatalf("bad block %+v", b)
				}
			}
		}
	})
}

func TestParseAnalytics(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    map[string]*AppRead
		wantErr bool
	}{
		{"empty", "", map[string]*AppRead{}, false},
		{"current file", "@app web\n@file 12 40 0 6\nab|cd\n\n@disk 1 2 3 4\n", map[string]*AppRead{"web": {
			Blocks: []LogBlock{{Inode: 12, Size: 40, Offset: 0, Data: []byte("ab|cd\n"), WantN: 6}},
			Disk:   api.AppDisk{Releases: 1, Repo: 2, AccessLog: 3, Images: 4}}}, false},
		{"rotated rest, then current", "@app web\n@old 11 29 25 4\nold\n\n@file 12 3 0 3\nnew\n@disk 0 0 0 0\n", map[string]*AppRead{"web": {
			Blocks: []LogBlock{
				{Old: true, Inode: 11, Size: 29, Offset: 25, Data: []byte("old\n"), WantN: 4, RestOfOld: true},
				{Inode: 12, Size: 3, Offset: 0, Data: []byte("new"), WantN: 3}}}}, false},
		{"short read (file shrank)", "@app web\n@file 1 10 0 10\nabc", map[string]*AppRead{"web": {
			Blocks: []LogBlock{{Inode: 1, Size: 10, Data: []byte("abc"), WantN: 10}}}}, false},
		{"two apps", "@app a\n@disk 1 0 0 0\n@app b\n@disk 2 0 0 0\n", map[string]*AppRead{
			"a": {Disk: api.AppDisk{Releases: 1}}, "b": {Disk: api.AppDisk{Releases: 2}}}, false},
		{"block before app", "@file 1 1 1 1\nx\n", nil, true},
		{"negative count", "@app a\n@file 1 2 3 -4\n", nil, true},
		{"no newline after data", "@app a\n@file 1 2 0 2\nabX", nil, true},
		{"unknown line", "@app a\nhello\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAnalytics([]byte(tt.out))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnalyticsLocal runs analytics on this machine against an access log
// and an app directory laid out like a node's.
func TestAnalyticsLocal(t *testing.T) {
	root, logs := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "apps", "web", "releases"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "apps", "web", "releases", "x"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	log := "1700000000.123|200|5|0.001\n1700000000.456|404|7|0.002\n"
	if err := os.WriteFile(filepath.Join(logs, "bakery-web.access"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(logs, "bakery-web.access"))
	ino := inode(fi)
	cmd, err := Analytics.Command(AnalyticsInput{Apps: []string{"web", "gone"}, Positions: map[string]api.LogPosition{"web": {Inode: ino, Offset: 27}}, LogDir: logs})
	found, err := ParseAnalytics([]byte(mustRun(t, cmd, err, root)))
	if err != nil {
		t.Fatal(err)
	}
	web := found["web"]
	if web == nil || len(web.Blocks) != 1 || string(web.Blocks[0].Data) != log[27:] || web.Blocks[0].Inode != ino || web.Blocks[0].Offset != 27 {
		t.Fatalf("web: %+v", web)
	}
	if web.Disk.Releases < 1000 || web.Disk.AccessLog != int64(len(log)) || web.Disk.Repo != 0 {
		t.Errorf("web disk %+v", web.Disk)
	}
	if g := found["gone"]; g == nil || len(g.Blocks) != 0 || g.Disk != (api.AppDisk{}) {
		t.Errorf("gone: %+v", g)
	}
}
