package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"bakery.dev/bakery/api"
)

// RuntimeLogs reads the journal of a deployment's active slot on its
// nodes (node "" = all): the last lines lines, then, with follow, new ones
// until ctx ends; with req.Process, the log of that process, with
// req.Schedule, the output of that schedule's runs. fn is called
// in arrival order.
func (c *Client) RuntimeLogs(ctx context.Context, name string, req api.RuntimeLogRequest, fn func(api.RuntimeLogLine)) error {
	path := "/api/v1/deployments/" + url.PathEscape(name) + "/logs"
	q := url.Values{"lines": {strconv.Itoa(req.Lines)}, "follow": {strconv.FormatBool(req.Follow)}}
	if req.Node != "" {
		q.Set("node", req.Node)
	}
	if req.Process != "" {
		q.Set("process", req.Process)
	}
	if req.Schedule != "" {
		q.Set("schedule", req.Schedule)
	}
	body, err := c.openEventStream(ctx, path, q, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	var endErr error
	ended := false
	err = readEvents(body, path, func(event string, data []byte) (bool, error) {
		switch event {
		case "line":
			var l api.RuntimeLogLine
			if err := json.Unmarshal(data, &l); err != nil {
				return true, fmt.Errorf("GET %s: line event: %w", path, err)
			}
			fn(l)
		case "end":
			ended = true
			var end api.RuntimeLogEnd
			if err := json.Unmarshal(data, &end); err != nil {
				return true, fmt.Errorf("GET %s: end event: %w", path, err)
			}
			if end.Error != "" {
				endErr = errors.New(end.Error)
			}
			return true, nil
		}
		return false, nil
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return nil // the caller stopped following
	case !ended:
		return fmt.Errorf("GET %s: the log stream ended early", path)
	}
	return endErr
}
