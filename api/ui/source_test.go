package ui

import (
	"strings"
	"testing"
)

func TestSetSource(t *testing.T) {
	const repo, ref = "git@github.example:octo/app.git", "dev"
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the result
		not      []string
	}{
		{"block style, comments kept", "# my app\napiVersion: bakery.dev/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  source:\n    repo: /srv/git/a.git # old\n    ref: main\n    commit: 4f1c2a9e0b7d35c6e8a1f0b2c3d4e5f607182930\n  nodes: [web-1]\n",
			[]string{"# my app\n", "    repo: " + repo, "    ref: dev\n", "  nodes: [web-1]\n"}, []string{"commit:", "/srv/git/a.git", "ref: main"}},
		{"flow style", "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: shop}\nspec:\n  source: {repo: /srv/git/shop.git, ref: main}\n  run: {command: ./shop}\n",
			[]string{"source: {repo: '" + repo + "', ref: dev}", "run: {command: ./shop}"}, []string{"/srv/git/shop.git"}},
		{"no source yet, a node before", "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: web-1}\nspec: {address: 10.0.0.1}\n---\napiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  nodes: [web-1]\n",
			[]string{"kind: Node\n", "---\n", "  source:\n    repo: " + repo + "\n    ref: dev\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := setSource(tc.in, repo, ref)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("result lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("result still has %q:\n%s", n, got)
				}
			}
		})
	}
	for _, tc := range []struct{ name, in, repo, err string }{
		{"nothing chosen", "kind: Deployment\n", "", "choose a repository"},
		{"no deployment", "kind: Node\nmetadata: {name: a}\n", repo, "no Deployment"},
		{"two deployments", "kind: Deployment\n---\nkind: Deployment\n", repo, "2 Deployments"},
		{"bad yaml", "kind: Deployment\nspec: [\n", repo, "does not parse"},
		{"spec not a mapping", "kind: Deployment\nspec: 3\n", repo, "spec: must be a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := setSource(tc.in, tc.repo, ref)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one saying %q", err, tc.err)
			}
		})
	}
}
