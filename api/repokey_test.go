package api

import "testing"

func TestRepoKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://github.com/Owner/App.git", "github.com/owner/app"},
		{"https://user:tok@github.com/owner/app/", "github.com/owner/app"},
		{"git@github.com:owner/app.git", "github.com/owner/app"},
		{"ssh://git@github.com:22/owner/app", "github.com/owner/app"},
		{"git://github.com/owner/app.git", "github.com/owner/app"},
		{"/srv/git/app.git", "/srv/git/app"},
		{"/srv/git/app/", "/srv/git/app"},
		{"file:///srv/git/app.git", "/srv/git/app"},
		{"/srv/git/../git/App", "/srv/git/App"},
		{"", ""},
	} {
		if got := RepoKey(c.in); got != c.want {
			t.Errorf("RepoKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if RepoKey("https://github.com/owner/app") == RepoKey("https://github.com/owner/app2") {
		t.Error("different repositories share a key")
	}
}
