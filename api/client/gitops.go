package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"bakery.dev/bakery/api"
)

// SyncSource asks the server to sync the ManifestSource name now and
// returns the request id; the sync runs in the background, and the
// source's status.syncHandled equals the id once it is done.
func (c *Client) SyncSource(ctx context.Context, name string) (string, error) {
	var out api.SyncResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/manifestsources/"+url.PathEscape(name)+"/sync", nil, nil, &out)
	return out.Request, err
}

// CreateWebhookSecret mints the webhook secret of repo (rotate replaces
// an existing one) and returns it: the only time it is shown.
func (c *Client) CreateWebhookSecret(ctx context.Context, repo string, rotate bool) (*api.WebhookSecretResponse, error) {
	body, err := json.Marshal(api.WebhookSecretRequest{Repo: repo, Rotate: rotate})
	if err != nil {
		return nil, err
	}
	var out api.WebhookSecretResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/webhooks/secrets", nil, &reqBody{data: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhookSecrets lists every repository's webhook secret; with
// withSealed each carries its sealed value (for an export), never the
// plain secret.
func (c *Client) ListWebhookSecrets(ctx context.Context, withSealed bool) ([]api.WebhookSecretResponse, error) {
	q := url.Values{}
	if withSealed {
		q.Set("sealed", "true")
	}
	var out api.WebhookSecretList
	if err := c.do(ctx, http.MethodGet, "/api/v1/webhooks/secrets", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// RestoreWebhookSecret stores a sealed webhook secret of repo from an
// export (it must open with the server's key); replace overwrites an
// existing one.
func (c *Client) RestoreWebhookSecret(ctx context.Context, repo, sealedValue string, replace bool) (*api.WebhookSecretResponse, error) {
	body, err := json.Marshal(api.WebhookSecretRequest{Repo: repo, Rotate: replace, Sealed: sealedValue})
	if err != nil {
		return nil, err
	}
	var out api.WebhookSecretResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/webhooks/secrets", nil, &reqBody{data: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetWebhookSecret says whether repo has a webhook secret (never the
// secret itself).
func (c *Client) GetWebhookSecret(ctx context.Context, repo string) (*api.WebhookSecretResponse, error) {
	var out api.WebhookSecretResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/webhooks/secrets", url.Values{"repo": {repo}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GitHubLogin returns the URL to open in a browser to sign in to GitHub.
func (c *Client) GitHubLogin(ctx context.Context) (string, error) {
	var out api.GitHubLogin
	err := c.do(ctx, http.MethodGet, "/api/v1/github/login", nil, nil, &out)
	return out.AuthorizeURL, err
}

// GitHubLoginFor is GitHubLogin for the web UI, which calls the API
// in-process for a logged-in user: after the sign-in GitHub's callback
// sends the browser back to next, a page of the UI.
func (c *Client) GitHubLoginFor(ctx context.Context, next string) (string, error) {
	var out api.GitHubLogin
	err := c.do(ctx, http.MethodGet, "/api/v1/github/login", url.Values{"next": {next}}, nil, &out)
	return out.AuthorizeURL, err
}

// GitHubUser returns the login of the signed-in GitHub user.
func (c *Client) GitHubUser(ctx context.Context) (string, error) {
	var out api.GitHubSignedIn
	err := c.do(ctx, http.MethodGet, "/api/v1/github/user", nil, nil, &out)
	return out.Login, err
}

// GitHubRepos lists the signed-in user's repositories.
func (c *Client) GitHubRepos(ctx context.Context) ([]api.GitHubRepo, error) {
	var out api.GitHubRepoList
	err := c.do(ctx, http.MethodGet, "/api/v1/github/repos", nil, nil, &out)
	return out.Items, err
}

func githubRepoPath(fullName string) (string, error) {
	owner, repo, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", fmt.Errorf("%q: give the repository as OWNER/REPO", fullName)
	}
	return "/api/v1/github/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo), nil
}

// GitHubRepoInfo returns repository OWNER/REPO.
func (c *Client) GitHubRepoInfo(ctx context.Context, fullName string) (*api.GitHubRepo, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out api.GitHubRepo
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GitHubBranches lists the branches of OWNER/REPO.
func (c *Client) GitHubBranches(ctx context.Context, fullName string) ([]api.GitHubBranch, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out api.GitHubBranchList
	err = c.do(ctx, http.MethodGet, p+"/branches", nil, nil, &out)
	return out.Items, err
}

// GitHubCreateHook registers the push webhook on OWNER/REPO with a newly
// generated secret (which goes to GitHub and the server only).
func (c *Client) GitHubCreateHook(ctx context.Context, fullName string) (*api.GitHubHook, error) {
	p, err := githubRepoPath(fullName)
	if err != nil {
		return nil, err
	}
	var out api.GitHubHook
	if err := c.do(ctx, http.MethodPost, p+"/hooks", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
