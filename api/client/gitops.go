package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// SyncSource asks the server to sync the ManifestSource name now (the
// sync runs in the background; its outcome is the source's status).
func (c *Client) SyncSource(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/manifestsources/"+url.PathEscape(name)+"/sync", nil, nil, nil)
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
