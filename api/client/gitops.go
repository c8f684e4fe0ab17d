package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SyncSource asks the server to sync the ManifestSource name now and
// returns the request id; the sync runs in the background, and the
// source's status.syncHandled equals the id once it is done.
func (c *Client) SyncSource(ctx context.Context, name string) (string, error) {
	var out struct {
		Request string `json:"request"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/manifestsources/"+url.PathEscape(name)+"/sync", nil, nil, &out)
	return out.Request, err
}

// WebhookSecret describes a repository's webhook secret. Secret is set
// only in the answer that created it.
type WebhookSecret struct {
	Repo       string    `json:"repo"`
	Secret     string    `json:"secret,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	GitHubURL  string    `json:"githubURL"`
	GenericURL string    `json:"genericURL"`
}

// CreateWebhookSecret mints the webhook secret of repo (rotate replaces
// an existing one) and returns it: the only time it is shown.
func (c *Client) CreateWebhookSecret(ctx context.Context, repo string, rotate bool) (*WebhookSecret, error) {
	body, err := json.Marshal(map[string]any{"repo": repo, "rotate": rotate})
	if err != nil {
		return nil, err
	}
	var out WebhookSecret
	if err := c.do(ctx, http.MethodPost, "/api/v1/webhooks/secrets", nil, &reqBody{data: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWebhookSecret says whether repo has a webhook secret (never the
// secret itself).
func (c *Client) GetWebhookSecret(ctx context.Context, repo string) (*WebhookSecret, error) {
	var out WebhookSecret
	if err := c.do(ctx, http.MethodGet, "/api/v1/webhooks/secrets", url.Values{"repo": {repo}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GitHubLogin returns the URL to open in a browser to sign in to GitHub.
func (c *Client) GitHubLogin(ctx context.Context) (string, error) {
	var out struct {
		AuthorizeURL string `json:"authorizeURL"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/github/login", nil, nil, &out)
	return out.AuthorizeURL, err
}

// GitHubLoginFor is GitHubLogin for the web UI, which calls the API
// in-process for a logged-in user: after the sign-in GitHub's callback
// sends the browser back to next, a page of the UI.
func (c *Client) GitHubLoginFor(ctx context.Context, next string) (string, error) {
	var out struct {
		AuthorizeURL string `json:"authorizeURL"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/github/login", url.Values{"next": {next}}, nil, &out)
	return out.AuthorizeURL, err
}

// GitHubUser returns the login of the signed-in GitHub user.
func (c *Client) GitHubUser(ctx context.Context) (string, error) {
	var out struct {
		Login string `json:"login"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/github/user", nil, nil, &out)
	return out.Login, err
}

// GitHubRepo is a repository of the signed-in GitHub user.
type GitHubRepo struct {
	FullName      string `json:"fullName"`
	Private       bool   `json:"private"`
	CloneURL      string `json:"cloneURL"`
	SSHURL        string `json:"sshURL"`
	HTMLURL       string `json:"htmlURL"`
	DefaultBranch string `json:"defaultBranch"`
}

// GitHubRepos lists the signed-in user's repositories.
func (c *Client) GitHubRepos(ctx context.Context) ([]GitHubRepo, error) {
	var out struct {
		Items []GitHubRepo `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/github/repos", nil, nil, &out)
	return out.Items, err
}

// GitHubBranch is a branch and its head commit.
type GitHubBranch struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

func githubRepoPath(fullName string) (string, error) {
	owner, repo, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", fmt.Errorf("%q: give the repository as OWNER/REPO", fullName)
	}
	return "/api/v1/github/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo), nil
}

// GitHubRepoInfo returns repository OWNER/REPO.
func (c *Client) GitHubRepoInfo(ctx context.Context, fullName string) (*GitHubRepo, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out GitHubRepo
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GitHubBranches lists the branches of OWNER/REPO.
func (c *Client) GitHubBranches(ctx context.Context, fullName string) ([]GitHubBranch, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []GitHubBranch `json:"items"`
	}
	err = c.do(ctx, http.MethodGet, p+"/branches", nil, nil, &out)
	return out.Items, err
}

// GitHubHook is a push webhook registered on GitHub.
type GitHubHook struct {
	ID   int64  `json:"id"`
	Repo string `json:"repo"`
	URL  string `json:"url"`
}

// GitHubCreateHook registers the push webhook on OWNER/REPO with a newly
// generated secret (which goes to GitHub and the server only).
func (c *Client) GitHubCreateHook(ctx context.Context, fullName string) (*GitHubHook, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out GitHubHook
	if err := c.do(ctx, http.MethodPost, p+"/hooks", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
