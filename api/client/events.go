package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"bakery.dev/bakery/api"
)

// Events returns events newest first: those of object ("Kind/name", such
// as "Deployment/hello"), or of all objects with object "". limit <= 0
// means all the server keeps. A server whose store keeps no events answers
// 503 (an *APIError with that Code).
func (c *Client) Events(ctx context.Context, object string, limit int) ([]*api.Event, error) {
	var out api.EventList
	q := url.Values{}
	if object != "" {
		q.Set("object", object)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/events", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}
