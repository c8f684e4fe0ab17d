package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/manifests"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/manager"
	"bakery.dev/bakery/reconciler/node"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/notify"
)

// envDuration reads a duration from the environment, or returns def.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

type serverOptions struct {
	listen         string
	data           string
	databaseURL    string
	adminTokenFile string
	logLevel       string
	logFormat      string
	maxBody        string
	resync         time.Duration
	maxBackoff     time.Duration
	nodeRefresh    time.Duration
	analytics      time.Duration
	publicURL      string
	// keepRollouts is how many rollouts per deployment are kept; 0 keeps
	// every one.
	keepRollouts int
	// encryptionKeyFile names a file holding the keyring; empty means
	// $BAKERY_ENCRYPTION_KEY.
	encryptionKeyFile string
	// notify are the --notify values (else $BAKERY_NOTIFY, split on
	// spaces).
	notify []string
	// diskLowPercent is the DiskLow threshold; 0 disables it.
	diskLowPercent float64
	// manifests is a directory of manifests kept applied (watched).
	manifests string
	// githubClientID, githubURL and githubAPIURL configure the GitHub
	// integration; the client secret comes from the environment only.
	githubClientID, githubURL, githubAPIURL string
	// acmeServer, acmeStaging and certRenewBefore configure ingress.tls.
	acmeServer      string
	acmeStaging     bool
	certRenewBefore time.Duration
	// takeover bounds how long a key held by another server (postgres
	// store) waits, and how soon a dead server's keys are taken over.
	takeover time.Duration
	// allowLocalNodes lets writers create Nodes with spec.local, whose
	// commands run on this host as the server's user.
	allowLocalNodes bool
}

// notifyEnv holds notification targets separated by spaces when --notify
// is not given. Not a flag default: webhook URLs are secrets and --help
// would show them.
const notifyEnv = "BAKERY_NOTIFY"

// notifyTargets parses the --notify values, else the targets in env.
func notifyTargets(flags []string, env string) ([]notify.Target, error) {
	src := "--notify"
	if len(flags) == 0 {
		flags, src = strings.Fields(env), notifyEnv
	}
	var out []notify.Target
	for _, v := range flags {
		t, err := notify.ParseTarget(v)
		if err != nil {
			// The error names the URL, which may hold a secret: say
			// which value without repeating it.
			return nil, usageErrorf("%s: target %d of %d: %v", src, len(out)+1, len(flags), redactErr(err, v))
		}
		out = append(out, t)
	}
	return out, nil
}

// redactErr drops the query of URLs in err (webhook tokens sit there or in
// the path; the path is kept so a typo can be found).
func redactErr(err error, value string) string {
	msg := err.Error()
	for _, f := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '=' || r == ' ' }) {
		if i := strings.IndexByte(f, '?'); i >= 0 && strings.Contains(f, "://") {
			msg = strings.ReplaceAll(msg, f, f[:i]+"?…")
		}
	}
	return msg
}

// encryptionKeyEnv holds the keyring when --encryption-key-file is not
// given. It is not a flag: a key on the command line shows in ps.
const encryptionKeyEnv = "BAKERY_ENCRYPTION_KEY"

// missingKeyHelp explains how to make an encryption key.
const missingKeyHelp = `the postgres store keeps the control plane's SSH key pair in the database, encrypted:
set ` + encryptionKeyEnv + ` (or --encryption-key-file) to an encryption key, the same on
every server sharing the database, and keep it safe (without it the stored key pair
cannot be read). Make one with:
  head -c 32 /dev/urandom | base64`

// defaultDataDir is $BAKERY_DATA, else $XDG_DATA_HOME/bakery, else
// ~/.local/share/bakery, else ./.bakery-data.
func defaultDataDir() string {
	if d := os.Getenv("BAKERY_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bakery")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "bakery")
	}
	return ".bakery-data"
}

func newServerCmd(a *app) *cobra.Command {
	o := serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Bakery control plane (HTTP API)",
		Long: `Run the Bakery control plane: the HTTP API of docs/api.md, backed by a store.

Store: by default a directory of YAML files (--data); with --database-url (or
DATABASE_URL) a PostgreSQL database, which several servers may share.

Data directory (--data): $BAKERY_DATA, else $XDG_DATA_HOME/bakery, else
~/.local/share/bakery. It holds the file store and, with either store, the
admin token file <data>/admin-token (--admin-token-file names another) and
the git mirrors of deployed repositories (<data>/mirrors).

SSH key pair: the control plane logs in to nodes with one key pair, minted on
first start ('bakery node bootstrap-command' prints the public half; the
private key is never printed). With the file store it is <data>/ssh/id_ed25519
(0600). With PostgreSQL it is kept in the database, encrypted (AES-256-GCM),
so that every server sharing the database uses the same one (the first to
start mints it). That needs an encryption key: base64 of 32 random bytes in
BAKERY_ENCRYPTION_KEY, or in a file named by --encryption-key-file, the same on
every server; make one with 'head -c 32 /dev/urandom | base64'. To rotate,
give a comma-separated list, the new key first: values sealed with the older
keys still open; 'bakery secret reencrypt' then seals every stored value
again with the new key, after which the old one can be dropped (see
docs/operations.md). A server whose keys do not open the stored key pair
refuses to start.

The server runs the control loop: it observes every node and deployment over
SSH, rolls deployments out blue/green, and repairs drift every --resync.

Events: the control loop records what operators should know about — a rollout
succeeded or failed (RolloutSucceeded, RolloutFailed), an app's unit found
stopped and restarted (UnitUnhealthy), a node lost or back (NodeUnreachable,
NodeRecovered), a node's free disk space below --disk-low-percent (DiskLow) —
and sends each to every --notify webhook: url=<http(s) URL> (required),
format=json (the event as JSON, the default), slack ({"text": …}) or discord
({"content": …}), on=all (the default) or failures (warnings and errors
only). Deliveries are retried with backoff and never hold up the control
loop. --notify is repeatable; BAKERY_NOTIFY holds targets separated by
spaces.

TLS: a deployment with ingress.tls gets a certificate per host from an ACME
server — the deployment's own ingress.tls.server, else --acme-server (Let's
Encrypt by default; --acme-staging for Let's Encrypt's staging directory) —
with certbot on each node (HTTP-01 through the node's nginx), and is served
over HTTPS with HTTP redirected. Certificates expiring within
--cert-renew-before are renewed; a failed renewal raises
CertificateRenewalFailed.

Several servers may share one database: each reconcile of an object runs on
one of them at a time (a PostgreSQL advisory lock, freed when the holder's
connection ends), an apply through one wakes them all, and the objects of a
server that dies (even SIGKILLed) are taken over within about
--takeover-interval. GET /api/v1/leases shows who reconciles what; each
server has an id (host name, process id, random suffix) shown there and in
the rollouts it runs.

On first start, with no token stored, the server creates the token "admin",
writes it to the admin token file (0600) and prints it on stderr once,
together with the 'bakery login' command that uses it.

The server stops gracefully on SIGINT or SIGTERM: it stops accepting
connections and lets requests in flight finish.

Every flag can be set from the environment: BAKERY_LISTEN, BAKERY_DATA,
DATABASE_URL, BAKERY_ADMIN_TOKEN_FILE, BAKERY_LOG_LEVEL, BAKERY_LOG_FORMAT,
BAKERY_MAX_BODY, BAKERY_ENCRYPTION_KEY_FILE, BAKERY_NOTIFY,
BAKERY_DISK_LOW_PERCENT, BAKERY_MANIFESTS, BAKERY_ACME_SERVER,
BAKERY_ACME_STAGING, BAKERY_CERT_RENEW_BEFORE, BAKERY_TAKEOVER_INTERVAL,
BAKERY_ALLOW_LOCAL_NODES; a flag wins over its variable.

Local nodes: a Node with spec.local: true runs its commands on this host, as
the server's user — with its SSH key and encryption key within reach. The
server refuses them (API, web UI, manifest sources, --manifests) unless
started with --allow-local-nodes; without it, a local Node already stored
stalls and nothing runs on this host. Allow them only where every API token
and UI user may have a shell here (a single-user machine, tests).

GitOps: --manifests DIR keeps the manifests of a local directory applied
(watched; each change applied as one unit; objects created from it and whose
files are removed are pruned, deployments removed from their nodes first).
ManifestSource objects do the same for a git branch. Push webhooks
(/api/v1/webhooks/github and /api/v1/webhooks/generic, secrets from 'bakery
webhook create') make deployments and sources following the pushed branch
fetch it at once. Webhook secrets are sealed with the encryption key; with the
file store and no key given, one is minted in <data>/encryption-key (0600).`,
		Example: `  # Local development: file store under ~/.local/share/bakery
  bakery server

  # Listen on every interface, data in /var/lib/bakery, JSON logs
  bakery server --listen :8080 --data /var/lib/bakery --log-format json

  # PostgreSQL store (several servers may share it: give them one key)
  export BAKERY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)   # once; keep it safe
  DATABASE_URL=postgres://bakery@db/bakery bakery server --data /var/lib/bakery

  # Failures to Slack, every event as JSON to another webhook
  bakery server --notify url=https://hooks.slack.com/services/T0/B0/XXX,format=slack,on=failures \
    --notify url=https://ops.example/bakery-events

  # Rotate the encryption key: the new key first, the old one still opens
  BAKERY_ENCRYPTION_KEY=NEWKEY,OLDKEY bakery server --database-url postgres://bakery@db/bakery`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Not a flag default: --help would show the URL's password.
			if !cmd.Flags().Changed("database-url") {
				o.databaseURL = os.Getenv("DATABASE_URL")
			}
			if v := os.Getenv("BAKERY_KEEP_ROLLOUTS"); v != "" && !cmd.Flags().Changed("keep-rollouts") {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return usageErrorf("BAKERY_KEEP_ROLLOUTS=%q: not a number", v)
				}
				o.keepRollouts = n
			}
			if v := os.Getenv("BAKERY_DISK_LOW_PERCENT"); v != "" && !cmd.Flags().Changed("disk-low-percent") {
				n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "%")), 64)
				if err != nil {
					return usageErrorf("BAKERY_DISK_LOW_PERCENT=%q: not a number", v)
				}
				o.diskLowPercent = n
			}
			return runServer(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", cmp.Or(os.Getenv("BAKERY_LISTEN"), "127.0.0.1:8080"), "address to listen on, host:port (port 0 picks a free port) (env BAKERY_LISTEN)")
	f.StringVar(&o.data, "data", defaultDataDir(), "data directory: file store and admin token (env BAKERY_DATA)")
	f.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL; selects the postgres store (env DATABASE_URL)")
	f.StringVar(&o.adminTokenFile, "admin-token-file", os.Getenv("BAKERY_ADMIN_TOKEN_FILE"), "where the first admin token is written (default <data>/admin-token) (env BAKERY_ADMIN_TOKEN_FILE)")
	f.StringVar(&o.logLevel, "log-level", cmp.Or(os.Getenv("BAKERY_LOG_LEVEL"), "info"), "log level: debug, info, warn or error (env BAKERY_LOG_LEVEL)")
	f.StringVar(&o.logFormat, "log-format", cmp.Or(os.Getenv("BAKERY_LOG_FORMAT"), "text"), "log format on stderr: text or json (env BAKERY_LOG_FORMAT)")
	f.DurationVar(&o.analytics, "analytics-interval", envDuration("BAKERY_ANALYTICS_INTERVAL", time.Minute), "how often traffic and disk metrics are read from the nodes' access logs (0: never) (env BAKERY_ANALYTICS_INTERVAL)")
	f.DurationVar(&o.resync, "resync", envDuration("BAKERY_RESYNC", 30*time.Second), "how often every node and deployment is observed again (drift detection) (env BAKERY_RESYNC)")
	f.DurationVar(&o.maxBackoff, "max-backoff", envDuration("BAKERY_MAX_BACKOFF", time.Minute), "the longest wait before a failing node or deployment (an unreachable node, a full disk) is tried again; never longer than --resync (env BAKERY_MAX_BACKOFF)")
	f.StringVar(&o.publicURL, "public-url", os.Getenv("BAKERY_PUBLIC_URL"), "URL nodes and users reach this server at, for bootstrap commands (default: as the request came in) (env BAKERY_PUBLIC_URL)")
	f.StringVar(&o.encryptionKeyFile, "encryption-key-file", os.Getenv("BAKERY_ENCRYPTION_KEY_FILE"), "file holding the encryption key(s) sealing Secrets (both stores) and the postgres store's SSH key pair, as BAKERY_ENCRYPTION_KEY: base64 of 32 bytes, comma-separated when rotating, newest first (default: $BAKERY_ENCRYPTION_KEY) (env BAKERY_ENCRYPTION_KEY_FILE)")
	f.IntVar(&o.keepRollouts, "keep-rollouts", deployment.DefaultKeepRollouts, "how many rollouts (records and logs) to keep per deployment, the oldest deleted after each rollout, besides the newest succeeded rollout of as many revisions (what rollout undo restores); 0 keeps every one (env BAKERY_KEEP_ROLLOUTS)")
	f.StringVar(&o.maxBody, "max-body", cmp.Or(os.Getenv("BAKERY_MAX_BODY"), "4MiB"), "largest request body accepted, e.g. 4MiB, 512KiB, 1000000 (env BAKERY_MAX_BODY)")
	f.StringArrayVar(&o.notify, "notify", nil, "send events to a webhook: url=URL[,format=json|slack|discord][,on=all|failures]; repeatable (env "+notifyEnv+": targets separated by spaces)")
	f.StringVar(&o.manifests, "manifests", os.Getenv("BAKERY_MANIFESTS"), "a directory of manifests kept applied: watched, changes applied as one unit, objects whose files are removed pruned (env BAKERY_MANIFESTS)")
	f.StringVar(&o.githubClientID, "github-client-id", os.Getenv("BAKERY_GITHUB_CLIENT_ID"), "GitHub OAuth app client id: enables GitHub sign-in, repository lists and webhook registration; the client secret is read from BAKERY_GITHUB_CLIENT_SECRET (env BAKERY_GITHUB_CLIENT_ID)")
	f.StringVar(&o.githubURL, "github-url", cmp.Or(os.Getenv("BAKERY_GITHUB_URL"), "https://github.com"), "GitHub web URL for OAuth (GitHub Enterprise: https://HOST) (env BAKERY_GITHUB_URL)")
	f.StringVar(&o.githubAPIURL, "github-api-url", cmp.Or(os.Getenv("BAKERY_GITHUB_API_URL"), "https://api.github.com"), "GitHub REST API URL (GitHub Enterprise: https://HOST/api/v3) (env BAKERY_GITHUB_API_URL)")
	f.DurationVar(&o.takeover, "takeover-interval", envDuration("BAKERY_TAKEOVER_INTERVAL", 2*time.Second), "with several servers on one database: how often a server retries an object another server is reconciling, checks its own lock connection, and looks for objects whose server died; a killed server's work is taken over within about this long (env BAKERY_TAKEOVER_INTERVAL)")
	f.DurationVar(&o.nodeRefresh, "node-status-refresh", envDuration("BAKERY_NODE_STATUS_REFRESH", node.DefaultStatusRefresh), "how often a node that answers with nothing else changed gets its lastHandshakeTime and disk usage written again; a change (unreachable, a condition, tools) is written at once (env BAKERY_NODE_STATUS_REFRESH)")
	f.Float64Var(&o.diskLowPercent, "disk-low-percent", node.DefaultDiskLowPercent, "raise DiskLow when a node's free disk space falls below this percentage of its filesystem; 0 never (env BAKERY_DISK_LOW_PERCENT)")
	f.StringVar(&o.acmeServer, "acme-server", cmp.Or(os.Getenv("BAKERY_ACME_SERVER"), deployment.DefaultACMEServer), "ACME directory URL for ingress.tls certificates when a deployment names none (env BAKERY_ACME_SERVER)")
	f.BoolVar(&o.acmeStaging, "acme-staging", os.Getenv("BAKERY_ACME_STAGING") == "true", "use Let's Encrypt's staging directory (untrusted test certificates) instead of --acme-server (env BAKERY_ACME_STAGING=true)")
	f.BoolVar(&o.allowLocalNodes, "allow-local-nodes", os.Getenv(manifests.AllowLocalNodesEnv) == "true", "allow Nodes with spec.local: true, whose commands run on this host as the server's user — whoever can write a Node (any API token, UI user, or manifest source allowed Node) then runs shell here; off, such writes are refused and existing local nodes stall (env "+manifests.AllowLocalNodesEnv+"=true)")
	f.DurationVar(&o.certRenewBefore, "cert-renew-before", envDuration("BAKERY_CERT_RENEW_BEFORE", deployment.DefaultRenewBefore), "renew an ingress.tls certificate when it expires within this time (env BAKERY_CERT_RENEW_BEFORE)")
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("data")
	return cmd
}

func runServer(cmd *cobra.Command, a *app, o serverOptions) error {
	ctx := cmd.Context()
	log, err := newLogger(a.errOut, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	set, err := checkServerFlags(cmd, o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// Claim the address before anything is printed: a port in use is
	// reported at once, and port 0 becomes a concrete port for the banner.
	if set.addr, err = resolveListen(o.listen); err != nil {
		return err
	}
	ps, err := openServerStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer ps.st.Close()
	w, err := wireServer(ctx, o, set, ps, log)
	if err != nil {
		return err
	}
	printServerBanner(a, o, set, ps, w, log)
	return serve(ctx, o, set.addr, ps, w, log)
}

// serverSettings are the server's flags, checked and resolved into what
// the control loop and the API take.
type serverSettings struct {
	maxBody      int64
	keepRollouts int     // -1: keep every rollout
	diskLow      float64 // -1: never
	acmeServer   string
	targets      []notify.Target
	tokenFile    string
	addr         string // the address claimed (set by runServer)
}

// checkServerFlags checks o's values; a wrong one is a usage error naming
// the flag.
func checkServerFlags(cmd *cobra.Command, o serverOptions) (serverSettings, error) {
	var set serverSettings
	var err error
	if set.maxBody, err = parseBytes(o.maxBody); err != nil {
		return set, usageErrorf("--max-body: %v", err)
	}
	if o.data == "" {
		return set, usageErrorf("--data must not be empty")
	}
	if o.keepRollouts < 0 {
		return set, usageErrorf("--keep-rollouts must be 0 (keep every rollout) or more, not %d", o.keepRollouts)
	}
	set.keepRollouts = o.keepRollouts
	if set.keepRollouts == 0 {
		set.keepRollouts = -1 // the reconciler's "keep every one"
	}
	if o.diskLowPercent < 0 || o.diskLowPercent >= 100 {
		return set, usageErrorf("--disk-low-percent must be between 0 (never) and 100, not %g", o.diskLowPercent)
	}
	set.diskLow = o.diskLowPercent
	if set.diskLow == 0 {
		set.diskLow = -1 // the reconciler's "never"
	}
	if set.acmeServer, err = acmeServerOf(cmd, o); err != nil {
		return set, err
	}
	if o.certRenewBefore <= 0 {
		return set, usageErrorf("--cert-renew-before must be positive, not %s", o.certRenewBefore)
	}
	if o.takeover <= 0 {
		return set, usageErrorf("--takeover-interval must be positive, not %s", o.takeover)
	}
	if set.targets, err = notifyTargets(o.notify, os.Getenv(notifyEnv)); err != nil {
		return set, err
	}
	set.tokenFile = cmp.Or(o.adminTokenFile, filepath.Join(o.data, "admin-token"))
	return set, nil
}

// acmeServerOf is the ACME directory of --acme-server or --acme-staging.
func acmeServerOf(cmd *cobra.Command, o serverOptions) (string, error) {
	acmeServer := o.acmeServer
	if o.acmeStaging {
		if cmd.Flags().Changed("acme-server") {
			return "", usageErrorf("--acme-staging and --acme-server exclude each other")
		}
		acmeServer = deployment.ACMEStagingServer
	}
	if r := api.ValidateACMEServer(acmeServer); r != "" {
		return "", usageErrorf("--acme-server: %s", r)
	}
	return acmeServer, nil
}

// serverStore is the opened store with what comes with it.
type serverStore struct {
	st          store.Store
	kind, where string // "file" or "postgres", and the data directory or "postgres"
	keyring     *sealed.Keyring
	// coord coordinates several servers on one database (nil: file store).
	coord    *pgstore.Coordinator
	serverID string
	// mgr is the control loop once it exists: the coordinator hands it
	// the objects of servers that died.
	mgr atomic.Pointer[manager.Manager]
}

// openServerStore opens the PostgreSQL store (with its coordinator) when
// --database-url is set, else the file store in --data. The encryption
// keyring is read first: a server that cannot read the stored secrets
// changes nothing.
func openServerStore(ctx context.Context, o serverOptions, log *slog.Logger) (*serverStore, error) {
	ps := &serverStore{serverID: manager.NewServerID()}
	var err error
	if o.databaseURL == "" {
		// The file store keeps its SSH key pair in the data directory; a
		// key, when given, seals Secrets.
		if o.encryptionKeyFile != "" || os.Getenv(encryptionKeyEnv) != "" {
			if ps.keyring, err = loadKeyring(o.encryptionKeyFile); err != nil {
				return nil, err
			}
		}
		fs, err := filestore.Open(o.data, filestore.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("open file store: %w", err)
		}
		ps.st, ps.kind, ps.where = fs, "file", o.data
		return ps, nil
	}
	if ps.keyring, err = loadKeyring(o.encryptionKeyFile); err != nil {
		return nil, err
	}
	pg, err := pgstore.Open(ctx, o.databaseURL, pgstore.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	ps.st, ps.kind, ps.where = pg, "postgres", "postgres"
	ps.coord, err = pgstore.NewCoordinator(ctx, pg, ps.serverID, pgstore.CoordinatorOptions{
		Interval: o.takeover, Logger: log,
		OnOrphan: func(key string) {
			if m := ps.mgr.Load(); m != nil {
				log.Info("taking over an object whose server is gone", "key", key)
				m.EnqueueKey(key)
			}
		},
	})
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return ps, nil
}

// wiredServer is the control loop and the API server built on a store.
type wiredServer struct {
	mgr          *manager.Manager
	srv          *server.Server
	setup, token string // the web UI's setup token, the admin token when just created
	tokenCreated bool
}

// wireServer builds the control loop and the API server (with the web
// UI) on ps. The SSH identity comes first: a server that cannot open it
// (a wrong encryption key) stops before it creates or prints anything.
func wireServer(ctx context.Context, o serverOptions, set serverSettings, ps *serverStore, log *slog.Logger) (*wiredServer, error) {
	var identity nodeconn.Identity
	var err error
	if ss, ok := ps.st.(store.Settings); ok && ps.keyring != nil && o.databaseURL != "" {
		identity, err = nodeconn.StoredIdentity(ctx, ss, ps.keyring)
	} else {
		identity, err = nodeconn.LoadOrCreateIdentity(filepath.Join(o.data, "ssh"))
	}
	if err != nil {
		return nil, err
	}
	w := &wiredServer{}
	if w.token, w.tokenCreated, err = auth.EnsureAdminToken(ctx, ps.st, set.tokenFile); err != nil {
		return nil, err
	}
	secrets, err := secretsKeyring(o, ps.keyring)
	if err != nil {
		return nil, err
	}
	mcfg := manager.Config{
		Store: ps.st, Identity: identity, DataDir: o.data, Resync: o.resync, MaxBackoff: o.maxBackoff, NodeStatusRefresh: o.nodeRefresh, KeepRollouts: set.keepRollouts, Logger: log,
		Notify: set.targets, DiskLowPercent: set.diskLow,
		ACMEServer: set.acmeServer, CertRenewBefore: o.certRenewBefore, ServerID: ps.serverID,
		Keyring: secrets, AnalyticsInterval: cmp.Or(o.analytics, -1), AllowLocalNodes: o.allowLocalNodes,
	}
	gh, err := githubConfig(o)
	if err != nil {
		return nil, err
	}
	uiCfg, setup, err := webUIConfig(ctx, ps.st, set.targets)
	if err != nil {
		return nil, err
	}
	w.setup = setup
	uiCfg.PublicURL, uiCfg.GitHub, uiCfg.Logger = o.publicURL, gh != nil && gh.ClientID != "", log
	scfg := server.Config{
		Store: ps.st, Logger: log, MaxBodyBytes: set.maxBody,
		Version: version, Commit: commit, StoreKind: ps.kind,
		PublicURL: o.publicURL, ServerID: ps.serverID, UI: uiCfg.Mount, Keyring: secrets, GitHub: gh,
		AllowLocalNodes: o.allowLocalNodes,
	}
	if ps.coord != nil {
		mcfg.Locker, mcfg.LockRetry, mcfg.Ports = ps.coord, o.takeover, ps.coord
		scfg.Cluster = ps.coord
	}
	if w.mgr, err = manager.New(mcfg); err != nil {
		return nil, err
	}
	ps.mgr.Store(w.mgr)
	scfg.Loop = w.mgr
	if w.srv, err = server.New(scfg); err != nil {
		return nil, err
	}
	return w, nil
}

// printServerBanner tells where the server listens, how to reach the web
// UI and, on a first start, the admin token.
func printServerBanner(a *app, o serverOptions, set serverSettings, ps *serverStore, w *wiredServer, log *slog.Logger) {
	url := "http://" + bannerHost(set.addr)
	fmt.Fprintf(a.errOut, "Bakery %s serving on %s (%s store: %s)\n", version, url, ps.kind, ps.where)
	printWebUI(a.errOut, cmp.Or(strings.TrimRight(o.publicURL, "/"), url), w.setup)
	if w.tokenCreated {
		fmt.Fprintf(a.errOut, "Created the admin API token (shown only this once; also in %s):\n  %s\n", set.tokenFile, w.token)
		fmt.Fprintf(a.errOut, "Point the CLI at this server with:\n  bakery login --server %s --token %s\n", url, w.token)
	}
	log.Info("starting", "version", version, "commit", commit, "store", ps.kind, "addr", set.addr, "server", ps.serverID)
	for _, t := range set.targets {
		log.Info("sending events to", "target", t.String())
	}
	log.Info("ingress.tls certificates", "acme-server", set.acmeServer, "renew-before", o.certRenewBefore)
}

// serve runs the control loop (with the coordinator, stopped after it so
// that its locks are freed last), the manifest directory watch and the
// HTTP server until ctx ends or the server fails, then stops them all.
func serve(ctx context.Context, o serverOptions, addr string, ps *serverStore, w *wiredServer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchDone, err := watchManifests(ctx, o.manifests, ps.st, o.allowLocalNodes, log)
	if err != nil {
		return err
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		if ps.coord != nil {
			cctx, ccancel := context.WithCancel(context.WithoutCancel(ctx))
			cdone := make(chan struct{})
			go func() { defer close(cdone); ps.coord.Run(cctx) }()
			defer func() { ccancel(); <-cdone }()
		}
		w.mgr.Run(ctx)
	}()
	err = server.Serve(ctx, addr, w.srv.Handler(), log)
	cancel()
	<-loopDone
	if watchDone != nil {
		if werr := <-watchDone; werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return err
}

// loadKeyring reads the encryption keyring from file, else from
// $BAKERY_ENCRYPTION_KEY. Neither is an error explaining how to make a key.
// The keys themselves never appear in an error.
func loadKeyring(file string) (*sealed.Keyring, error) {
	src, text := encryptionKeyEnv, os.Getenv(encryptionKeyEnv)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--encryption-key-file: %w", err)
		}
		src, text = file, string(b)
	}
	if strings.TrimSpace(text) == "" {
		if file != "" {
			return nil, fmt.Errorf("--encryption-key-file %s is empty: %s", file, missingKeyHelp)
		}
		return nil, errors.New(missingKeyHelp)
	}
	kr, err := sealed.ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("encryption key from %s: %w; make one with: head -c 32 /dev/urandom | base64", src, err)
	}
	return kr, nil
}

// resolveListen checks that addr can be listened on and returns it with a
// concrete port (a free one for port 0). The probe listener is closed
// again before server.Serve listens.
func resolveListen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// bannerHost is addr as a client reaches it: an unspecified host (":8080",
// "0.0.0.0", "::") becomes the loopback address.
func bannerHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format must be text or json, not %q", format)
}

// parseBytes reads a size: a number of bytes with an optional unit, binary
// (KiB, MiB, GiB) or decimal (K/KB, M/MB, G/GB).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 4MiB", s)
	}
	mult := map[string]int64{
		"": 1, "B": 1,
		"K": 1000, "KB": 1000, "KIB": 1 << 10,
		"M": 1000 * 1000, "MB": 1000 * 1000, "MIB": 1 << 20,
		"G": 1000 * 1000 * 1000, "GB": 1000 * 1000 * 1000, "GIB": 1 << 30,
	}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, KB, MB or GB)", s, unit)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}
