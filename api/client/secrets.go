package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"bakery.dev/bakery/api"
)

// GetSealed is Get, except that a Secret comes with its sealed values
// (spec.sealed), which open only with the server's encryption key. It is
// what `bakery secret set` and `bakery export --secrets` read; plain reads
// show a Secret's keys only.
func (c *Client) GetSealed(ctx context.Context, kind, name string) (api.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, p, url.Values{"sealed": {"true"}}, nil, &raw); err != nil {
		return nil, err
	}
	return DecodeObject(raw, kind)
}

// ListSealed is List (every object of kind), with Secrets' sealed values
// as GetSealed gives them.
func (c *Client) ListSealed(ctx context.Context, kind string) ([]api.Object, error) {
	res := api.Resource(kind)
	if res == "" {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/"+res, url.Values{"sealed": {"true"}}, nil, &list); err != nil {
		return nil, err
	}
	out := make([]api.Object, 0, len(list.Items))
	for i, raw := range list.Items {
		o, err := DecodeObject(raw, kind)
		if err != nil {
			return nil, fmt.Errorf("list %s: item %d: %w", res, i, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Reencrypt asks the server to seal every stored secret value (and its
// stored SSH identity) again with its current encryption key, after which
// older keys can be removed from the server's keyring.
func (c *Client) Reencrypt(ctx context.Context) (*api.ReencryptResult, error) {
	var out api.ReencryptResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/reencrypt", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Metrics returns the traffic and disk metrics of a deployment.
func (c *Client) Metrics(ctx context.Context, deployment string) (*api.DeploymentMetrics, error) {
	p, err := objectPath(api.KindDeployment, deployment)
	if err != nil {
		return nil, err
	}
	var out api.DeploymentMetrics
	if err := c.do(ctx, http.MethodGet, p+"/metrics", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
