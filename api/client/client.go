package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
)

// DefaultTimeout bounds every request unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 20

// Client talks to one Bakery server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	timeout   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send requests through hc (its Timeout is
// left alone; WithTimeout still applies per request).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds every request (default DefaultTimeout); 0 means no
// bound other than the context's.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header (default "bakery-cli/dev").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithVersion sets the User-Agent to "bakery-cli/<version>".
func WithVersion(version string) Option {
	return func(c *Client) { c.userAgent = "bakery-cli/" + version }
}

// New returns a client for the server at server ("http://127.0.0.1:8080";
// a bare "host:port" means http) that authenticates with token.
func New(server, token string, opts ...Option) (*Client, error) {
	u, err := ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      u,
		token:     token,
		http:      http.DefaultClient,
		timeout:   DefaultTimeout,
		userAgent: "bakery-cli/dev",
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// ParseServerURL checks and normalises a server address: a scheme
// (http or https) and a host are required; a bare "host:port" gets http://.
// The result has no trailing slash.
func ParseServerURL(server string) (*url.URL, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return nil, errors.New("no server address given")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", server, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server address %q: scheme must be http or https", server)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server address %q: no host", server)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server address %q: must not carry a query or fragment", server)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Server returns the server's base URL.
func (c *Client) Server() string { return c.base.String() }

// Get returns the object kind/name.
func (c *Client) Get(ctx context.Context, kind, name string) (api.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &raw); err != nil {
		return nil, err
	}
	return DecodeObject(raw, kind)
}

// List returns the objects of kind matching selector ("app=web,tier!=db";
// empty matches all), sorted by name.
func (c *Client) List(ctx context.Context, kind, selector string) ([]api.Object, error) {
	res := api.Resource(kind)
	if res == "" {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/"+res, q, nil, &list); err != nil {
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

// Create stores a new object and returns it as stored; an error matching
// ErrConflict means the name is taken.
func (c *Client) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	kind := obj.GetTypeMeta().Kind
	res := api.Resource(kind)
	if res == "" {
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return c.write(ctx, http.MethodPost, "/api/v1/"+res, obj)
}

// Replace replaces labels, annotations and spec of an existing object. A
// non-empty metadata.resourceVersion must match the stored one (else an
// error matching ErrConflict).
func (c *Client) Replace(ctx context.Context, obj api.Object) (api.Object, error) {
	p, err := objectPath(obj.GetTypeMeta().Kind, obj.GetObjectMeta().Name)
	if err != nil {
		return nil, err
	}
	return c.write(ctx, http.MethodPut, p, obj)
}

func (c *Client) write(ctx context.Context, method, path string, obj api.Object) (api.Object, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", api.Ref(obj), err)
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, path, nil, &reqBody{body, "application/json"}, &raw); err != nil {
		return nil, err
	}
	return DecodeObject(raw, obj.GetTypeMeta().Kind)
}

// Delete removes kind/name.
func (c *Client) Delete(ctx context.Context, kind, name string) error {
	p, err := objectPath(kind, name)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// DeletePurgingData removes deployment name and its persistent
// directories on the nodes (spec.persistent), which Delete keeps.
func (c *Client) DeletePurgingData(ctx context.Context, name string) error {
	p, err := objectPath(api.KindDeployment, name)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p+"?purgeData=true", nil, nil, nil)
}

// Status returns kind/name with only metadata and status filled in (the
// spec is left empty).
func (c *Client) Status(ctx context.Context, kind, name string) (api.Object, error) {
	p, err := objectPath(kind, name)
	if err != nil {
		return nil, err
	}
	var st api.ObjectStatus
	if err := c.do(ctx, http.MethodGet, p+"/status", nil, nil, &st); err != nil {
		return nil, err
	}
	return api.Assemble(kind, st.Metadata, nil, st.Status)
}

// Apply creates or updates every object in one transaction on the server:
// all of them or none. With dryRun nothing is written and the answer says
// what would happen.
func (c *Client) Apply(ctx context.Context, objs []api.Object, dryRun bool) (*api.ApplyResponse, error) {
	if objs == nil {
		objs = []api.Object{}
	}
	body, err := json.Marshal(objs)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return c.apply(ctx, &reqBody{body, "application/json"}, dryRun)
}

// ApplyBundle is Apply for a bundle as bytes: multi-document YAML, or JSON
// (an object, an array of objects or a List). The server decodes and
// validates it.
func (c *Client) ApplyBundle(ctx context.Context, bundle []byte, dryRun bool) (*api.ApplyResponse, error) {
	ct := "application/yaml"
	if t := bytes.TrimLeft(bundle, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		ct = "application/json"
	}
	return c.apply(ctx, &reqBody{bundle, ct}, dryRun)
}

func (c *Client) apply(ctx context.Context, body *reqBody, dryRun bool) (*api.ApplyResponse, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dryRun", "true")
	}
	var out api.ApplyResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/apply", q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (*api.VersionInfo, error) {
	var v api.VersionInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/version", nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Ready returns nil when the server answers /readyz with 200 (it needs no
// token).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

type reqBody struct {
	data        []byte
	contentType string
}

func objectPath(kind, name string) (string, error) {
	res := api.Resource(kind)
	if res == "" {
		return "", fmt.Errorf("unknown kind %q", kind)
	}
	if name == "" {
		return "", fmt.Errorf("%s: no name given", kind)
	}
	return "/api/v1/" + res + "/" + url.PathEscape(name), nil
}

// do sends one request and decodes a 2xx JSON answer into out (when out is
// not nil) or an error answer into *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body *reqBody, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body.data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", body.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(code int, data []byte) error {
	e := &APIError{}
	if err := json.Unmarshal(data, e); err != nil || e.Message == "" {
		// Not our error body (a proxy, a plain-text answer): keep what it says.
		e = &APIError{Message: strings.TrimSpace(string(data))}
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	// The status line is the truth; a body claiming another code is not.
	e.Code = code
	return e
}

// DecodeObject decodes one object from JSON. Its kind comes from the JSON;
// defaultKind is used when the JSON does not name one.
func DecodeObject(data []byte, defaultKind string) (api.Object, error) {
	var tm api.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	kind := tm.Kind
	if kind == "" {
		kind = defaultKind
	}
	o, err := api.New(kind)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, o); err != nil {
		return nil, fmt.Errorf("decode %s: %w", kind, err)
	}
	t := o.GetTypeMeta()
	if t.Kind == "" {
		t.Kind = kind
	}
	if t.APIVersion == "" {
		t.APIVersion = api.APIVersion
	}
	return o, nil
}

// NodeBootstrap returns the one-line command that prepares node name.
func (c *Client) NodeBootstrap(ctx context.Context, name string) (*api.Bootstrap, error) {
	var b api.Bootstrap
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes/"+url.PathEscape(name)+"/bootstrap", nil, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// VerifyNode asks the server to connect to node name now and returns the
// node with its fresh status.
func (c *Client) VerifyNode(ctx context.Context, name string) (*api.Node, error) {
	var n api.Node
	if err := c.do(ctx, http.MethodPost, "/api/v1/nodes/"+url.PathEscape(name)+"/verify", nil, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// DeploymentAction asks for an action on a deployment: api.ActionDeploy,
// api.ActionRedeploy (commit), api.ActionRestart, api.ActionRollback
// (toRevision, 0 = previous) or api.ActionResume. It returns the deployment once the action
// is recorded; the rollout runs in the background.
func (c *Client) DeploymentAction(ctx context.Context, name string, action api.Action, commit string, toRevision int64) (*api.Deployment, error) {
	out, err := c.RequestAction(ctx, name, action, commit, toRevision)
	if err != nil {
		return nil, err
	}
	return out.Deployment, nil
}

// RequestAction is DeploymentAction returning the whole answer, with the
// request's id (Request): the rollout that carries the action out
// records it as api.Rollout.Request, and the deployment's
// status.lastRequest names it once the action is done.
func (c *Client) RequestAction(ctx context.Context, name string, action api.Action, commit string, toRevision int64) (*api.ActionResponse, error) {
	return c.RequestActionWith(ctx, name, action, api.ActionOptions{Commit: commit, ToRevision: toRevision})
}

// RequestActionWith is RequestAction with every option (deploy
// --rerun-release).
func (c *Client) RequestActionWith(ctx context.Context, name string, action api.Action, opts api.ActionOptions) (*api.ActionResponse, error) {
	body, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	var out api.ActionResponse
	path := "/api/v1/deployments/" + url.PathEscape(name) + "/actions/" + url.PathEscape(string(action))
	if err := c.do(ctx, http.MethodPost, path, nil, &reqBody{data: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rollouts lists a deployment's rollouts, newest first (limit 0: all).
func (c *Client) Rollouts(ctx context.Context, deployment string, limit int) ([]*api.Rollout, error) {
	var out api.RolloutList
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/deployments/"+url.PathEscape(deployment)+"/rollouts", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Rollout returns one rollout record.
func (c *Client) Rollout(ctx context.Context, id string) (*api.Rollout, error) {
	var r api.Rollout
	if err := c.do(ctx, http.MethodGet, "/api/v1/rollouts/"+url.PathEscape(id), nil, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Logs returns up to limit log lines of a rollout with seq > after.
func (c *Client) Logs(ctx context.Context, id string, after int64, limit int) ([]api.LogLine, error) {
	var out api.LogPage
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if err := c.do(ctx, http.MethodGet, "/api/v1/rollouts/"+url.PathEscape(id)+"/logs", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}
