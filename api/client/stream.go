package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"bakery.dev/bakery/api"
)

// Reconnection of StreamLogs: at most streamRetries attempts in a row
// without receiving anything, waiting streamBackoff, then twice as long
// each time, at most streamMaxBackoff.
const (
	streamRetries    = 6
	streamBackoff    = 100 * time.Millisecond
	streamMaxBackoff = 5 * time.Second
	// maxEventBytes bounds one line of the stream (a log line's JSON).
	maxEventBytes = 4 << 20
)

// errStreamCut is a stream that ended without its end event.
var errStreamCut = errors.New("log stream ended before the rollout did")

// StreamLogs follows rollout id's log from the line after seq after: it
// calls fn with every line, in order and each once, until the rollout is
// done and every line was delivered, and returns how it ended. A dropped
// connection is reopened with Last-Event-ID (with backoff, a bounded number
// of times in a row); an error answer of the server (4xx), ctx ending or
// too many failed attempts end it with an error. WithTimeout does not
// apply: only ctx bounds the stream.
func (c *Client) StreamLogs(ctx context.Context, id string, after int64, fn func(api.LogLine)) (*api.StreamEnd, error) {
	last := after
	failures := 0
	backoff := streamBackoff
	for {
		before := last
		end, err := c.streamOnce(ctx, id, last, func(l api.LogLine) {
			if l.Seq <= last {
				return // already delivered before a reconnect
			}
			last = l.Seq
			fn(l)
		})
		if end != nil {
			return end, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Code < 500 {
			return nil, err
		}
		if last > before {
			// Progress was made: the connection dropped, it did not fail.
			failures, backoff = 0, streamBackoff
		}
		failures++
		if failures >= streamRetries {
			return nil, fmt.Errorf("rollout %s: log stream: giving up after %d attempts: %w", id, failures, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, streamMaxBackoff)
	}
}

// streamOnce reads one connection of the log stream; it returns the end
// event, or why the stream stopped without one.
func (c *Client) streamOnce(ctx context.Context, id string, after int64, fn func(api.LogLine)) (*api.StreamEnd, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/api/v1/rollouts/" + url.PathEscape(id) + "/logs/stream"
	h := http.Header{}
	if after > 0 {
		h.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	}
	body, err := c.openEventStream(ctx, path, url.Values{"after": {strconv.FormatInt(after, 10)}}, h)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var end *api.StreamEnd
	err = readEvents(body, path, func(event string, data []byte) (bool, error) {
		switch event {
		case "line":
			var l api.LogLine
			if err := json.Unmarshal(data, &l); err != nil {
				return true, fmt.Errorf("GET %s: line event: %w", path, err)
			}
			fn(l)
		case "end":
			end = &api.StreamEnd{}
			if err := json.Unmarshal(data, end); err != nil {
				return true, fmt.Errorf("GET %s: end event: %w", path, err)
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if end == nil {
		return nil, errStreamCut
	}
	return end, nil
}

// openEventStream sends GET path?q with header and returns the body of a
// text/event-stream answer; an error answer decodes into *APIError.
func (c *Client) openEventStream(ctx context.Context, path string, q url.Values, header http.Header) (io.ReadCloser, error) {
	return c.openEventStreamWith(ctx, http.MethodGet, path, q, header, nil)
}

// openEventStreamWith is openEventStream with a method and a JSON body
// (nil: none).
func (c *Client) openEventStreamWith(ctx context.Context, method, path string, q url.Values, header http.Header, body []byte) (io.ReadCloser, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, decodeError(resp.StatusCode, data)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, &APIError{Code: resp.StatusCode, Message: fmt.Sprintf("%s %s: answer is %q, not an event stream", method, path, resp.Header.Get("Content-Type"))}
	}
	return resp.Body, nil
}

// readEvents reads Server-Sent Events from r and calls fn with each
// event's name and data until fn says stop (or fails) or the stream ends.
// Comments (keepalives) are skipped.
func readEvents(r io.Reader, path string, fn func(event string, data []byte) (stop bool, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 { // dispatch
			if event != "" || data.Len() > 0 {
				if stop, err := fn(event, data.Bytes()); stop || err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // a comment: keepalive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
