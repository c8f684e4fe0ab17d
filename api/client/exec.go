package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

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

// ExecTerminal runs a one-off command on a terminal (bakery exec -it):
// stdin's bytes reach it as typed, out gets the terminal's output, resize
// (if not nil) the window sizes. It returns when the command ended, with
// its exit status.
func (c *Client) ExecTerminal(ctx context.Context, name string, req api.ExecRequest, stdin io.Reader, out io.Writer, resize <-chan [2]int) (api.ExecEnd, error) {
	req.TTY = true
	path := "/api/v1/deployments/" + url.PathEscape(name) + "/exec"
	head, err := json.Marshal(req)
	if err != nil {
		return api.ExecEnd{}, err
	}
	frames, fw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return api.WriteFrame(fw, typ, p)
	}
	u := *c.base
	u.Path = c.base.Path + path
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), io.MultiReader(bytes.NewReader(head), frames))
	if err != nil {
		return api.ExecEnd{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", api.TerminalContentType)
	hreq.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.token)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := stdin.Read(buf)
			if n > 0 && send(api.FrameData, buf[:n]) != nil {
				return
			}
			if err != nil {
				return
			}
		}
	}()
	if resize != nil {
		go func() {
			for sz := range resize {
				if send(api.FrameResize, api.ResizePayload(sz[0], sz[1])) != nil {
					return
				}
			}
		}()
	}
	defer fw.Close()
	resp, err := c.http.Do(hreq)
	if err != nil {
		return api.ExecEnd{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return api.ExecEnd{}, decodeError(resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.TerminalContentType {
		return api.ExecEnd{}, &APIError{Code: resp.StatusCode, Message: fmt.Sprintf("POST %s: answer is %q, not a terminal stream (an older server?)", path, ct)}
	}
	for {
		typ, payload, err := api.ReadFrame(resp.Body)
		if err != nil {
			if ctx.Err() != nil {
				return api.ExecEnd{}, ctx.Err()
			}
			return api.ExecEnd{}, fmt.Errorf("POST %s: the terminal stream ended before the command did: %w", path, err)
		}
		switch typ {
		case api.FrameData:
			if _, err := out.Write(payload); err != nil {
				return api.ExecEnd{}, err
			}
		case api.FrameEnd:
			var end api.ExecEnd
			if err := json.Unmarshal(payload, &end); err != nil {
				return end, fmt.Errorf("POST %s: end frame: %w", path, err)
			}
			return end, nil
		}
	}
}
