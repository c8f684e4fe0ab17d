// Package notify sends Bakery's events to webhook targets: plain JSON,
// Slack or Discord incoming webhooks.
//
// A Notifier never blocks its caller: Notify puts the event on a bounded
// queue per target (a full queue drops the event, with a warning logged),
// and one worker per target delivers it, retrying failed deliveries with
// exponential backoff. Close delivers what it can within a bound.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
)

// Formats of a target's payload.
const (
	FormatJSON    = "json"
	FormatSlack   = "slack"
	FormatDiscord = "discord"
)

// Filters of a target.
const (
	OnAll      = "all"
	OnFailures = "failures"
)

// Target is one webhook events are sent to.
type Target struct {
	URL string
	// Format is json (the event as JSON), slack ({"text": …}) or discord
	// ({"content": …}).
	Format string
	// On is all (every event) or failures (warning and error events only).
	On string
}

// ParseTarget parses a flag value like
// "url=https://hooks.example/x,format=slack,on=failures". Format defaults
// to json and on to all; the URL must be http or https. A value without
// "url=" (a bare URL) is accepted as the URL.
func ParseTarget(s string) (Target, error) {
	t := Target{Format: FormatJSON, On: OnAll}
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, errors.New("empty notification target")
	}
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		s = "url=" + s
	}
	// The URL may itself contain commas: split on the known keys only.
	for _, part := range splitKeys(s) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Target{}, fmt.Errorf("notification target %q: %q is not key=value", s, part)
		}
		switch strings.TrimSpace(k) {
		case "url":
			t.URL = strings.TrimSpace(v)
		case "format":
			t.Format = strings.ToLower(strings.TrimSpace(v))
		case "on":
			t.On = strings.ToLower(strings.TrimSpace(v))
		default:
			return Target{}, fmt.Errorf("notification target %q: unknown key %q (want url, format, on)", s, k)
		}
	}
	return t, t.Validate()
}

// splitKeys splits s at commas followed by "key=" (a key of letters): a
// comma elsewhere stays in the value (a URL may contain one).
func splitKeys(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ',' {
			continue
		}
		rest := strings.TrimLeft(s[i+1:], " ")
		j := 0
		for j < len(rest) && (rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z' || rest[j] == '-' || rest[j] == '_') {
			j++
		}
		if j > 0 && j < len(rest) && rest[j] == '=' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// Validate reports what is wrong with t.
func (t Target) Validate() error {
	if t.URL == "" {
		return errors.New("notification target: url= is required")
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notification target: url %q is not an http(s) URL", t.URL)
	}
	switch t.Format {
	case FormatJSON, FormatSlack, FormatDiscord:
	default:
		return fmt.Errorf("notification target: format %q (want json, slack or discord)", t.Format)
	}
	switch t.On {
	case OnAll, OnFailures:
	default:
		return fmt.Errorf("notification target: on=%q (want all or failures)", t.On)
	}
	return nil
}

// String returns t without the URL's path and query, which often hold a
// secret.
func (t Target) String() string {
	host := t.URL
	if u, err := url.Parse(t.URL); err == nil {
		host = u.Scheme + "://" + u.Host
	}
	return fmt.Sprintf("%s (%s, %s)", host, t.Format, t.On)
}

// Wants reports whether t is sent e.
func (t Target) Wants(e *api.Event) bool {
	if t.On == OnFailures {
		return e.Severity == api.SeverityWarning || e.Severity == api.SeverityError
	}
	return true
}

// Text is the one-line form of e used by the chat formats:
// "<severity> <type> <object>: <message>".
func Text(e *api.Event) string {
	s := fmt.Sprintf("%s %s %s", e.Severity, e.Type, e.Object)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Payload returns the body sent to a target of format for e.
func Payload(format string, e *api.Event) ([]byte, error) {
	switch format {
	case FormatSlack:
		return json.Marshal(map[string]string{"text": Text(e)})
	case FormatDiscord:
		return json.Marshal(map[string]string{"content": Text(e)})
	default:
		return json.Marshal(e)
	}
}

type config struct {
	attempts     int
	backoff      time.Duration
	maxBackoff   time.Duration
	timeout      time.Duration
	queue        int
	closeTimeout time.Duration
	client       *http.Client
	logger       *slog.Logger
}

// Option configures a Notifier.
type Option func(*config)

// WithRetry sets how many attempts a delivery gets (default 5) and the
// wait before the second one (default 200ms), doubled after each failure
// (up to 30s).
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(c *config) {
		if attempts > 0 {
			c.attempts = attempts
		}
		if backoff > 0 {
			c.backoff = backoff
		}
	}
}

// WithTimeout bounds one HTTP request (default 10s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithQueueSize sets how many events wait per target (default 256).
func WithQueueSize(n int) Option { return func(c *config) { c.queue = n } }

// WithCloseTimeout bounds how long Close keeps delivering (default 5s).
func WithCloseTimeout(d time.Duration) Option { return func(c *config) { c.closeTimeout = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithHTTPClient sets the HTTP client (default a client of its own).
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// Notifier delivers events to its targets. A nil *Notifier does nothing.
type Notifier struct {
	cfg     config
	workers []*worker
	ctx     context.Context // cancelled when Close gives up
	cancel  context.CancelFunc

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type worker struct {
	target Target
	queue  chan *api.Event
}

// New starts a worker per target. The targets should be valid (ParseTarget).
func New(targets []Target, opts ...Option) *Notifier {
	cfg := config{attempts: 5, backoff: 200 * time.Millisecond, maxBackoff: 30 * time.Second,
		timeout: 10 * time.Second, queue: 256, closeTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.client == nil {
		cfg.client = &http.Client{}
	}
	if cfg.queue < 1 {
		cfg.queue = 1
	}
	n := &Notifier{cfg: cfg}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, t := range targets {
		w := &worker{target: t, queue: make(chan *api.Event, cfg.queue)}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(w)
		}()
	}
	return n
}

// Notify queues e for every target that wants it and returns at once. An
// event that finds a target's queue full is dropped for that target, with
// a warning. Events after Close are dropped.
func (n *Notifier) Notify(e *api.Event) {
	if n == nil || e == nil {
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	for _, w := range n.workers {
		if !w.target.Wants(e) {
			continue
		}
		select {
		case w.queue <- e:
		default:
			n.cfg.logger.Warn("notification queue full: event dropped", "target", w.target.String(), "event", e.Type, "object", e.Object)
		}
	}
}

// Close stops accepting events and delivers those queued, for at most the
// close timeout; what is left then is dropped (with a warning). It returns
// when every worker has stopped.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	for _, w := range n.workers {
		close(w.queue)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(n.cfg.closeTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.cancel()
		<-done
	}
	n.cancel()
}

func (n *Notifier) run(w *worker) {
	log := n.cfg.logger.With("target", w.target.String())
	for e := range w.queue {
		if n.ctx.Err() != nil {
			log.Warn("notifier closed: event not delivered", "event", e.Type, "object", e.Object)
			continue
		}
		if err := n.deliver(w.target, e); err != nil {
			log.Warn("notification not delivered", "event", e.Type, "object", e.Object, "err", err)
		}
	}
}

// deliver sends e to t, retrying with backoff.
func (n *Notifier) deliver(t Target, e *api.Event) error {
	body, err := Payload(t.Format, e)
	if err != nil {
		return err
	}
	wait := n.cfg.backoff
	var last error
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, last = n.post(t.URL, body)
		if last == nil {
			return nil
		}
		if !retry || attempt >= n.cfg.attempts {
			return fmt.Errorf("after %d attempt(s): %w", attempt, last)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-n.ctx.Done():
			timer.Stop()
			return fmt.Errorf("notifier closed while retrying: %w", last)
		}
		wait = min(wait*2, n.cfg.maxBackoff)
	}
}

// post sends one request; retry says whether a failure may pass.
func (n *Notifier) post(u string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bakery-notify")
	resp, err := n.cfg.client.Do(req)
	if err != nil {
		return n.ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("POST: %s", resp.Status)
	// Client errors other than timeouts and rate limits will not pass.
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return false, err
	}
	return true, err
}
