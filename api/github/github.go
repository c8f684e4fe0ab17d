package github

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"bakery.dev/bakery/api"
)

// Scopes are what Bakery asks for: private repositories (to list them
// and their branches) and repository hooks (to register webhooks).
const Scopes = "repo admin:repo_hook"

// Client talks to GitHub for one OAuth app.
type Client struct {
	// ClientID and ClientSecret identify the OAuth app.
	ClientID, ClientSecret string
	// WebURL is where OAuth pages live (default https://github.com;
	// GitHub Enterprise: https://HOST).
	WebURL string
	// APIURL is the REST API (default https://api.github.com; GitHub
	// Enterprise: https://HOST/api/v3).
	APIURL string
	// HTTPClient talks to GitHub (default: 30 s timeout).
	HTTPClient *http.Client
}

// Error is a failed call to GitHub. Status is the HTTP status Bakery's
// API answers with: 502 Bad Gateway, or 401 when GitHub refused the
// user's token (sign in again).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Code returns the HTTP status the API answers with.
func (e *Error) Code() int { return e.Status }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// clip shortens text GitHub sent for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (c *Client) web() string {
	if c.WebURL != "" {
		return strings.TrimRight(c.WebURL, "/")
	}
	return "https://github.com"
}

func (c *Client) api() string {
	if c.APIURL != "" {
		return strings.TrimRight(c.APIURL, "/")
	}
	return "https://api.github.com"
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// AuthorizeURL is the page a browser opens to sign in; GitHub sends it
// back to redirectURI with a code and state.
func (c *Client) AuthorizeURL(redirectURI, state string) string {
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {redirectURI}, "scope": {Scopes}, "state": {state}}
	return c.web() + "/login/oauth/authorize?" + q.Encode()
}

// Exchange trades the code of a sign-in (sent to redirectURI) for the
// user's access token.
func (c *Client) Exchange(ctx context.Context, code, redirectURI string) (string, error) {
	form := url.Values{"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "code": {code}, "redirect_uri": {redirectURI}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.web()+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
		ErrorDesc   string `json:"error_description"`
	}
	if err := c.do(req, &tok); err != nil {
		return "", err
	}
	if tok.Error != "" || tok.AccessToken == "" {
		return "", errorf(http.StatusBadGateway, "GitHub token exchange failed: %s %s", clip(tok.Error), clip(tok.ErrorDesc))
	}
	return tok.AccessToken, nil
}

// call calls the REST API with the user's token.
func (c *Client) call(ctx context.Context, token, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return errorf(http.StatusBadGateway, "GitHub: read answer: %v", err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return errorf(http.StatusUnauthorized, "GitHub refused the token (sign in again)")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(b, &e)
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, clip(e.Message))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %v", req.Method, req.URL.Path, err)
	}
	return nil
}

// User returns the login of token's user.
func (c *Client) User(ctx context.Context, token string) (string, error) {
	var user struct {
		Login string `json:"login"`
	}
	if err := c.call(ctx, token, http.MethodGet, "/user", nil, &user); err != nil {
		return "", err
	}
	return user.Login, nil
}

// repo is a repository as the REST API writes it.
type repo struct {
	FullName      string `json:"full_name"`
	Private       bool   `json:"private"`
	CloneURL      string `json:"clone_url"`
	SSHURL        string `json:"ssh_url"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
}

// maxPages bounds the pages read of a list (100 items a page).
const maxPages = 10

// Repos lists the repositories token's user can reach, most recently
// pushed first (at most 1000).
func (c *Client) Repos(ctx context.Context, token string) ([]api.GitHubRepo, error) {
	out := []api.GitHubRepo{}
	for page := 1; page <= maxPages; page++ {
		var repos []repo
		path := fmt.Sprintf("/user/repos?per_page=100&sort=pushed&page=%d", page)
		if err := c.call(ctx, token, http.MethodGet, path, nil, &repos); err != nil {
			return nil, err
		}
		for _, x := range repos {
			out = append(out, api.GitHubRepo(x))
		}
		if len(repos) < 100 {
			break
		}
	}
	return out, nil
}

// repoPath is the REST path of repository owner/name; the caller checks
// that both are GitHub names.
func repoPath(owner, name string) string { return "/repos/" + owner + "/" + name }

// Repo returns repository owner/name (its clone URLs and default branch).
func (c *Client) Repo(ctx context.Context, token, owner, name string) (api.GitHubRepo, error) {
	var x repo
	if err := c.call(ctx, token, http.MethodGet, repoPath(owner, name), nil, &x); err != nil {
		return api.GitHubRepo{}, err
	}
	return api.GitHubRepo(x), nil
}

// Branches lists the branches of owner/name with their head commits (at
// most 1000).
func (c *Client) Branches(ctx context.Context, token, owner, name string) ([]api.GitHubBranch, error) {
	out := []api.GitHubBranch{}
	for page := 1; page <= maxPages; page++ {
		var bs []struct {
			Name   string `json:"name"`
			Commit struct {
				SHA string `json:"sha"`
			} `json:"commit"`
		}
		path := fmt.Sprintf("%s/branches?per_page=100&page=%d", repoPath(owner, name), page)
		if err := c.call(ctx, token, http.MethodGet, path, nil, &bs); err != nil {
			return nil, err
		}
		for _, b := range bs {
			out = append(out, api.GitHubBranch{Name: b.Name, Commit: b.Commit.SHA})
		}
		if len(bs) < 100 {
			break
		}
	}
	return out, nil
}

// CreateHook registers a push webhook on owner/name that posts JSON to
// hookURL, signed with secret, and returns its id.
func (c *Client) CreateHook(ctx context.Context, token, owner, name, hookURL, secret string) (int64, error) {
	body := map[string]any{
		"name": "web", "active": true, "events": []string{"push"},
		"config": map[string]string{"url": hookURL, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
	}
	var hook struct {
		ID int64 `json:"id"`
	}
	if err := c.call(ctx, token, http.MethodPost, repoPath(owner, name)+"/hooks", body, &hook); err != nil {
		return 0, err
	}
	return hook.ID, nil
}
