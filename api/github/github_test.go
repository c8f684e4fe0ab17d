package github_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/github/githubtest"
)

func TestClient(t *testing.T) {
	ctx := t.Context()
	gh := githubtest.Start(t)
	c := &github.Client{ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret, WebURL: gh.URL + "/", APIURL: gh.APIURL()}

	u, err := url.Parse(c.AuthorizeURL("https://bakery.example/cb", "st"))
	if err != nil || u.Path != "/login/oauth/authorize" || u.Query().Get("state") != "st" || u.Query().Get("scope") != github.Scopes {
		t.Fatalf("authorize URL %v (%v)", u, err)
	}
	if _, err := c.Exchange(ctx, "wrong", "https://bakery.example/cb"); !isStatus(err, http.StatusBadGateway) || !strings.Contains(err.Error(), "bad_verification_code") {
		t.Fatalf("exchange of a wrong code: %v", err)
	}
	tok, err := c.Exchange(ctx, githubtest.Code, "https://bakery.example/cb")
	if err != nil || tok != githubtest.Token {
		t.Fatalf("exchange: %q %v", tok, err)
	}
	if _, err := c.User(ctx, "not-the-token"); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("a refused token: %v", err)
	}
	if login, err := c.User(ctx, tok); err != nil || login != "octo" {
		t.Fatalf("user: %q %v", login, err)
	}
	repos, err := c.Repos(ctx, tok)
	if err != nil || len(repos) != 2 || repos[1].DefaultBranch != "trunk" {
		t.Fatalf("repos: %+v %v", repos, err)
	}
	repo, err := c.Repo(ctx, tok, "octo", "app")
	want := api.GitHubRepo{FullName: "octo/app", Private: true, CloneURL: "https://github.example/octo/app.git",
		SSHURL: "git@github.example:octo/app.git", HTMLURL: "https://github.example/octo/app", DefaultBranch: "main"}
	if diff := cmp.Diff(want, repo); err != nil || diff != "" {
		t.Fatalf("repo (-want +got):\n%s%v", diff, err)
	}
	if _, err := c.Repo(ctx, tok, "octo", "nope"); !isStatus(err, http.StatusBadGateway) {
		t.Fatalf("a missing repository: %v", err)
	}
	bs, err := c.Branches(ctx, tok, "octo", "app")
	if diff := cmp.Diff([]api.GitHubBranch{{Name: "main", Commit: githubtest.MainCommit}, {Name: "dev", Commit: githubtest.DevCommit}}, bs); err != nil || diff != "" {
		t.Fatalf("branches (-want +got):\n%s%v", diff, err)
	}
	id, err := c.CreateHook(ctx, tok, "octo", "app", "https://bakery.example/hook", "s3cret")
	if err != nil || id != 12345678 {
		t.Fatalf("create hook: %d %v", id, err)
	}
	hooks := gh.Hooks()
	if len(hooks) != 1 || hooks[0]["config"].(map[string]any)["secret"] != "s3cret" {
		t.Fatalf("hooks received: %+v", hooks)
	}
}

// isStatus reports whether err is a *github.Error with the status code.
func isStatus(err error, code int) bool {
	var e *github.Error
	return errors.As(err, &e) && e.Code() == code
}
