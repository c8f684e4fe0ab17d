package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"bakery.dev/bakery/api"
)

// Exec runs a one-off command in a deployment's active release on one node
// (POST /api/v1/deployments/{name}/exec): fn gets its output lines as they
// come; the answer holds the node and the command's exit status. An end
// with Error means the command could not run to its end.
func (c *Client) Exec(ctx context.Context, name string, req api.ExecRequest, fn func(api.ExecLine)) (api.ExecEnd, error) {
	path := "/api/v1/deployments/" + url.PathEscape(name) + "/exec"
	body, err := json.Marshal(req)
	if err != nil {
		return api.ExecEnd{}, err
	}
	rd, err := c.openEventStreamWith(ctx, http.MethodPost, path, nil, nil, body)
	if err != nil {
		return api.ExecEnd{}, err
	}
	defer rd.Close()
	var end api.ExecEnd
	ended := false
	err = readEvents(rd, path, func(event string, data []byte) (bool, error) {
		switch event {
		case "line":
			var l api.ExecLine
			if err := json.Unmarshal(data, &l); err != nil {
				return true, fmt.Errorf("POST %s: line event: %w", path, err)
			}
			fn(l)
		case "end":
			ended = true
			if err := json.Unmarshal(data, &end); err != nil {
				return true, fmt.Errorf("POST %s: end event: %w", path, err)
			}
			return true, nil
		}
		return false, nil
	})
	switch {
	case err != nil:
		return end, err
	case ctx.Err() != nil:
		return end, ctx.Err()
	case !ended:
		return end, fmt.Errorf("POST %s: the stream ended before the command did", path)
	}
	return end, nil
}
