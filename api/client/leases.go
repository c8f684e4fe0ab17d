package client

import (
	"context"
	"net/http"

	"bakery.dev/bakery/api"
)

// Leases returns the control planes sharing the server's store and which
// of them reconciles which object now.
func (c *Client) Leases(ctx context.Context) (*api.Leases, error) {
	var out api.Leases
	if err := c.do(ctx, http.MethodGet, "/api/v1/leases", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
