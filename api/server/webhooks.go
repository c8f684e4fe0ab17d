package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// Webhook paths. They authenticate with an HMAC-SHA256 signature of the
// body (X-Hub-Signature-256) under the repository's webhook secret, not
// with a bearer token.
const (
	GitHubWebhookPath  = "/api/v1/webhooks/github"
	GenericWebhookPath = "/api/v1/webhooks/generic"
)

// DefaultMaxWebhookBytes bounds a webhook body (GitHub caps payloads at
// 25 MB; push payloads are far smaller).
const DefaultMaxWebhookBytes = 1 << 20

// maxDeliveries is how many deliveries (ids and body hashes) are
// remembered to refuse replays: the delivery retention.
const maxDeliveries = 2000

func (s *Server) githubWebhook(w http.ResponseWriter, r *http.Request) (any, error) {
	event := r.Header.Get("X-GitHub-Event")
	parse := ParseGitHubPush
	if event != "push" {
		parse = nil
	}
	return s.webhook(w, r, r.Header.Get("X-GitHub-Delivery"), event, parse)
}

func (s *Server) genericWebhook(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.webhook(w, r, r.Header.Get("X-Bakery-Delivery"), "push", ParseGenericPush)
}

// webhook checks a delivery and queues its push. Nothing is done unless
// the signature verifies under the secret of the repository the payload
// names; a delivery whose id or whose body (its SHA-256: the signature
// covers the body, not the id) was seen within the retention is
// acknowledged and ignored — a captured signed body cannot be replayed
// under new ids.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request, delivery, event string, parse func([]byte) (PushPayload, error)) (any, error) {
	sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	mac, err := hex.DecodeString(sig)
	if !ok || err != nil || len(mac) != sha256.Size {
		return nil, errorf(http.StatusUnauthorized, "missing or malformed X-Hub-Signature-256 (want sha256=<hex HMAC-SHA256 of the body>)")
	}
	limit := s.cfg.MaxWebhookBytes
	if limit <= 0 {
		limit = DefaultMaxWebhookBytes
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	if delivery == "" || !cleanString(delivery) || len(delivery) > 200 {
		return nil, errorf(http.StatusBadRequest, "missing or invalid delivery id header")
	}
	var p PushPayload
	var repos []string
	if parse != nil {
		if p, err = parse(body); err != nil {
			return nil, errorf(http.StatusBadRequest, "%v", err)
		}
		repos = p.Repos
	} else {
		// A ping or another event: still signed under the repository's
		// secret, which the payload names.
		repos = anyRepos(body)
	}
	if !s.verifySignature(r.Context(), repos, body, mac) {
		return nil, errorf(http.StatusUnauthorized, "signature does not match the repository's webhook secret")
	}
	pq := s.cfg.Loop
	if parse != nil && pq == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no control loop")
	}
	sum := sha256.Sum256(body)
	rec := deliveryRecord{ID: delivery, Body: hex.EncodeToString(sum[:])}
	fresh, err := s.deliveries.record(r.Context(), s.settings(), rec)
	if err != nil {
		return nil, err
	}
	if !fresh {
		s.log.Info("webhook: replayed delivery ignored (its id or its body was seen before)", "delivery", delivery)
		return api.WebhookResponse{Delivery: delivery, Result: "duplicate"}, nil
	}
	switch {
	case event == "ping":
		return api.WebhookResponse{Delivery: delivery, Result: "pong"}, nil
	case parse == nil:
		return api.WebhookResponse{Delivery: delivery, Result: "ignored"}, nil
	}
	err = pq.QueuePush(api.Push{Delivery: delivery, Repos: p.Repos, Ref: p.Ref, After: p.After, Received: time.Now()})
	if err != nil {
		// Not handled: a redelivery of this id must not count as a replay.
		if ferr := s.deliveries.forget(context.WithoutCancel(r.Context()), s.settings(), rec); ferr != nil {
			s.log.Warn("webhook: forgetting a delivery not queued", "delivery", delivery, "err", ferr)
		}
	}
	if errors.Is(err, api.ErrPushQueueFull) {
		w.Header().Set("Retry-After", "5")
		return nil, errorf(http.StatusServiceUnavailable, "%v", err)
	}
	if err != nil {
		return nil, err
	}
	return withStatus{http.StatusAccepted, api.WebhookResponse{Delivery: delivery, Result: "queued"}}, nil
}

// anyRepos reads the repository URLs of any GitHub event payload.
func anyRepos(body []byte) []string {
	var g githubPush
	if json.Unmarshal(body, &g) != nil || g.Repository == nil {
		return nil
	}
	r := g.Repository
	var out []string
	for _, u := range []string{r.CloneURL, r.SSHURL, r.GitURL, r.HTMLURL, r.URL} {
		if cleanString(u) {
			out = append(out, u)
		}
	}
	return out
}

// verifySignature reports whether mac is the HMAC-SHA256 of body under
// the webhook secret of one of repos (compared in constant time).
func (s *Server) verifySignature(ctx context.Context, repos []string, body, mac []byte) bool {
	seen := map[string]bool{}
	for _, r := range repos {
		key := api.RepoKey(r)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		sec, err := s.webhookSecret(ctx, key)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("webhook: reading a secret", "repo", key, "err", err)
			}
			continue
		}
		h := hmac.New(sha256.New, []byte(sec.Secret))
		h.Write(body)
		if hmac.Equal(h.Sum(nil), mac) {
			return true
		}
	}
	return false
}

// WebhookSecret is a repository's webhook secret as stored (sealed).
type WebhookSecret struct {
	// Repo is the repository key (api.RepoKey).
	Repo      string    `json:"repo"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// settingForRepo is the setting holding key's webhook secret (a kind of
// sealed setting in the registry, store.SealedSettings).
func settingForRepo(key string) string { return store.WebhookSecretSetting.Name(key) }

func (s *Server) settings() store.Settings {
	ss, _ := s.store.(store.Settings)
	return ss
}

func (s *Server) secretsReady() (store.Settings, *sealed.Keyring, error) {
	ss := s.settings()
	if ss == nil || s.cfg.Keyring == nil {
		return nil, nil, errorf(http.StatusServiceUnavailable, "webhook secrets need a store that keeps settings and an encryption key")
	}
	return ss, s.cfg.Keyring, nil
}

func (s *Server) webhookSecret(ctx context.Context, key string) (WebhookSecret, error) {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return WebhookSecret{}, err
	}
	name := settingForRepo(key)
	b, err := ss.GetSetting(ctx, name)
	if err != nil {
		return WebhookSecret{}, err
	}
	plain, err := store.WebhookSecretSetting.Open(kr, name, b)
	if err != nil {
		return WebhookSecret{}, fmt.Errorf("open webhook secret of %s: %w", key, err)
	}
	var ws WebhookSecret
	if err := json.Unmarshal(plain, &ws); err != nil || ws.Repo != key {
		return WebhookSecret{}, fmt.Errorf("webhook secret of %s: corrupt", key)
	}
	return ws, nil
}

// CreateWebhookSecret mints a random secret for repo's webhooks, stores it
// sealed and returns it; the caller shows it once. An existing secret is
// kept (store.ErrAlreadyExists) unless rotate is set.
func (s *Server) CreateWebhookSecret(ctx context.Context, repo string, rotate bool) (WebhookSecret, error) {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return WebhookSecret{}, err
	}
	key := api.RepoKey(repo)
	if key == "" || !cleanString(repo) {
		return WebhookSecret{}, badField("repo", "is required: a repository URL or path")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return WebhookSecret{}, err
	}
	ws := WebhookSecret{Repo: key, Secret: base64.RawURLEncoding.EncodeToString(b), CreatedAt: time.Now().UTC().Truncate(time.Second)}
	plain, err := json.Marshal(ws)
	if err != nil {
		return WebhookSecret{}, err
	}
	name := settingForRepo(key)
	sealedValue, err := store.WebhookSecretSetting.Seal(kr, name, plain)
	if err != nil {
		return WebhookSecret{}, err
	}
	if rotate {
		err = ss.PutSetting(ctx, name, sealedValue)
	} else {
		err = ss.CreateSetting(ctx, name, sealedValue)
	}
	if errors.Is(err, store.ErrAlreadyExists) {
		return WebhookSecret{}, errorf(http.StatusConflict, "repository %s has a webhook secret already (it is never shown again; rotate it to get a new one)", key)
	}
	return ws, err
}

func (s *Server) webhookURLs(r *http.Request) (string, string) {
	base := strings.TrimRight(s.externalURL(r), "/")
	return base + GitHubWebhookPath, base + GenericWebhookPath
}

func (s *Server) createWebhookSecret(w http.ResponseWriter, r *http.Request) (any, error) {
	var in api.WebhookSecretRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, errorf(http.StatusBadRequest, "body: %v", err)
	}
	gh, gen := s.webhookURLs(r)
	if in.Sealed != "" {
		ws, err := s.restoreWebhookSecret(r.Context(), in)
		if err != nil {
			return nil, err
		}
		return withStatus{http.StatusCreated, api.WebhookSecretResponse{Repo: ws.Repo, CreatedAt: ws.CreatedAt, GitHubURL: gh, GenericURL: gen}}, nil
	}
	ws, err := s.CreateWebhookSecret(r.Context(), in.Repo, in.Rotate)
	if err != nil {
		return nil, err
	}
	return withStatus{http.StatusCreated, api.WebhookSecretResponse{Repo: ws.Repo, Secret: ws.Secret, CreatedAt: ws.CreatedAt, GitHubURL: gh, GenericURL: gen}}, nil
}

// restoreWebhookSecret stores a sealed webhook secret from an export: it
// must open with this server's key as the secret of in.Repo (the sealed
// value is bound to its repository's setting). An existing secret is kept
// (409) unless in.Rotate.
func (s *Server) restoreWebhookSecret(ctx context.Context, in api.WebhookSecretRequest) (WebhookSecret, error) {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return WebhookSecret{}, err
	}
	key := api.RepoKey(in.Repo)
	if key == "" || !cleanString(in.Repo) {
		return WebhookSecret{}, badField("repo", "is required: a repository URL or path")
	}
	b, err := base64.StdEncoding.DecodeString(in.Sealed)
	if err != nil {
		return WebhookSecret{}, badField("sealed", "is not base64")
	}
	name := settingForRepo(key)
	plain, err := store.WebhookSecretSetting.Open(kr, name, b)
	var ws WebhookSecret
	if err == nil {
		err = json.Unmarshal(plain, &ws)
	}
	if err != nil || ws.Repo != key {
		return WebhookSecret{}, badField("sealed", "does not open with this server's encryption keys as the webhook secret of %s", key)
	}
	if in.Rotate {
		err = ss.PutSetting(ctx, name, b)
	} else {
		err = ss.CreateSetting(ctx, name, b)
	}
	if errors.Is(err, store.ErrAlreadyExists) {
		return WebhookSecret{}, errorf(http.StatusConflict, "repository %s has a webhook secret already (replace it with rotate)", key)
	}
	return ws, err
}

// listWebhookSecrets answers GET /api/v1/webhooks/secrets without a repo:
// every webhook secret (each kind of sealed setting is in the registry,
// store.SealedSettings), with its sealed value when ?sealed=true (for
// 'bakery export --secrets'), never in plain text.
func (s *Server) listWebhookSecrets(r *http.Request) (any, error) {
	withSealed := r.URL.Query().Get("sealed") == "true"
	ss, kr, err := s.secretsReady()
	if err != nil {
		return nil, err
	}
	k := store.WebhookSecretSetting
	names, err := ss.ListSettings(r.Context(), k.Prefix)
	if err != nil {
		return nil, err
	}
	gh, gen := s.webhookURLs(r)
	out := api.WebhookSecretList{Items: []api.WebhookSecretResponse{}}
	for _, name := range names {
		if !k.Matches(name) {
			continue
		}
		b, err := ss.GetSetting(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		plain, err := k.Open(kr, name, b)
		var ws WebhookSecret
		if err == nil {
			err = json.Unmarshal(plain, &ws)
		}
		if err != nil {
			return nil, fmt.Errorf("webhook secret (setting %s): %w", name, err)
		}
		item := api.WebhookSecretResponse{Repo: ws.Repo, CreatedAt: ws.CreatedAt, GitHubURL: gh, GenericURL: gen}
		if withSealed {
			item.Sealed = base64.StdEncoding.EncodeToString(b)
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

func (s *Server) getWebhookSecret(w http.ResponseWriter, r *http.Request) (any, error) {
	repo := r.URL.Query().Get("repo")
	if !r.URL.Query().Has("repo") {
		return s.listWebhookSecrets(r)
	}
	key := api.RepoKey(repo)
	if key == "" {
		return nil, badField("repo", "is required")
	}
	ws, err := s.webhookSecret(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "repository %s has no webhook secret", key)
	}
	if err != nil {
		return nil, err
	}
	gh, gen := s.webhookURLs(r)
	return api.WebhookSecretResponse{Repo: ws.Repo, CreatedAt: ws.CreatedAt, GitHubURL: gh, GenericURL: gen}, nil
}

// deliveryLog remembers the newest deliveries — id and body hash — in a
// setting, so that a replay is refused also after a restart. Its bound is
// maxDeliveries. Servers sharing a store each serialise their own
// updates; GitHub sends a delivery to one server, so the
// read-modify-write between servers is not guarded.
type deliveryLog struct {
	mu  sync.Mutex
	mem []deliveryRecord // when the store keeps no settings
}

const deliverySetting = "webhook-deliveries"

type deliveryRecord struct {
	ID string `json:"id"`
	// Body is the hex SHA-256 of the signed body (empty in records
	// written before it was kept).
	Body string    `json:"body,omitempty"`
	Time time.Time `json:"time"`
}

// seen reports whether rec's id or body is among recs.
func (rec deliveryRecord) seen(recs []deliveryRecord) bool {
	return slices.ContainsFunc(recs, func(r deliveryRecord) bool { return r.ID == rec.ID || r.Body != "" && r.Body == rec.Body })
}

// record adds rec; false when its id or its body was there already.
func (l *deliveryLog) record(ctx context.Context, ss store.Settings, rec deliveryRecord) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec.Time = time.Now().UTC()
	if ss == nil {
		if rec.seen(l.mem) {
			return false, nil
		}
		l.mem = append(l.mem, rec)
		if len(l.mem) > maxDeliveries {
			l.mem = l.mem[len(l.mem)-maxDeliveries:]
		}
		return true, nil
	}
	var recs []deliveryRecord
	b, err := ss.GetSetting(ctx, deliverySetting)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("webhook deliveries: %w", err)
	default:
		if err := json.Unmarshal(b, &recs); err != nil {
			return false, fmt.Errorf("webhook deliveries: %w", err)
		}
	}
	if rec.seen(recs) {
		return false, nil
	}
	recs = append(recs, rec)
	if len(recs) > maxDeliveries {
		recs = recs[len(recs)-maxDeliveries:]
	}
	b, err = json.Marshal(recs)
	if err != nil {
		return false, err
	}
	if err := ss.PutSetting(ctx, deliverySetting, b); err != nil {
		return false, fmt.Errorf("webhook deliveries: %w", err)
	}
	return true, nil
}

func (s *Server) syncSource(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	ss := s.cfg.Loop
	if ss == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no control loop")
	}
	id, err := ss.SyncSource(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return api.SyncResponse{Name: name, Request: id}, nil
}

// forget removes rec, recorded for a delivery that was then not handled
// (a redelivery must not count as a replay).
func (l *deliveryLog) forget(ctx context.Context, ss store.Settings, rec deliveryRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	drop := func(r deliveryRecord) bool { return r.ID == rec.ID && r.Body == rec.Body }
	if ss == nil {
		l.mem = slices.DeleteFunc(l.mem, drop)
		return nil
	}
	b, err := ss.GetSetting(ctx, deliverySetting)
	if err != nil {
		return err
	}
	var recs []deliveryRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return err
	}
	recs = slices.DeleteFunc(recs, drop)
	if b, err = json.Marshal(recs); err != nil {
		return err
	}
	return ss.PutSetting(ctx, deliverySetting, b)
}
