package manager

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/analytics"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/controller"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/manifestsource"
	"bakery.dev/bakery/reconciler/node"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/notify"
	"bakery.dev/bakery/reconciler/source"
	"bakery.dev/bakery/sshexec"
)

// Config configures a Manager.
type Config struct {
	Store    store.Store
	Identity nodeconn.Identity
	// DataDir holds the git mirrors (DataDir/mirrors).
	DataDir string
	// Resync is how often every object is observed again (default 30s).
	Resync time.Duration
	// Workers per controller (default 4).
	Workers int
	// BaseBackoff and MaxBackoff bound retries (defaults 1s, 1m; the
	// backoff never exceeds Resync either): a deployment that waits for
	// an unreachable node is tried again at least once per MaxBackoff.
	BaseBackoff, MaxBackoff time.Duration
	// StepTimeout bounds one rollout step on a node (default 15m).
	StepTimeout time.Duration
	// KeepRollouts is how many rollouts (records and logs) are kept per
	// deployment, the oldest deleted after each rollout (default 20,
	// DefaultKeepRollouts; negative keeps every one).
	KeepRollouts int
	// Locker makes keys exclusive across control planes.
	Locker store.Locker
	// LockRetry is how soon a key held by another control plane is
	// tried again (default 2s).
	LockRetry time.Duration
	// Ports books ports on nodes across control planes (nil: in this
	// process only).
	Ports store.PortBook
	// ServerID names this control plane (NewServerID), recorded in the
	// rollouts it runs.
	ServerID string
	Logger   *slog.Logger
	// Notify are the webhooks events are sent to (besides being kept in
	// the store when it keeps events, store.Events).
	Notify []notify.Target
	// DiskLowPercent is the free space, in percent of a node's
	// filesystem, below which DiskLow is raised (default
	// DefaultDiskLowPercent; negative: never).
	DiskLowPercent float64
	// NodeStatusRefresh is how often a node whose status has not changed
	// otherwise gets lastHandshakeTime and disk usage written again
	// (default node.DefaultStatusRefresh, 5m; negative: at every
	// resync). A converged resync writes nothing in between.
	NodeStatusRefresh time.Duration
	// ACMEServer is the ACME directory for ingress.tls certificates when
	// a deployment names none (default DefaultACMEServer).
	ACMEServer string
	// CertRenewBefore is how long before expiry a certificate is renewed
	// (default DefaultRenewBefore); CertRetry how long a failed
	// certificate step waits (default DefaultCertRetry).
	CertRenewBefore, CertRetry time.Duration
	// Keyring opens the Secrets deployments reference (nil: deployments
	// that use secrets stall with reason SecretUnavailable).
	Keyring *sealed.Keyring
	// AnalyticsInterval is how often traffic and disk metrics are read
	// from the nodes (default 60s; negative: never); AnalyticsRetention
	// how long they are kept (default 24h). Analytics need a store that
	// keeps settings (store.Settings).
	AnalyticsInterval, AnalyticsRetention time.Duration
	// AllowLocalNodes lets manifest sources write Nodes with spec.local,
	// and lets the loop run commands on them, on this host (the server's
	// --allow-local-nodes). Off, a local node stalls and nothing runs here.
	AllowLocalNodes bool
}

// Manager runs Bakery's controllers and answers the actions the API asks
// for. It is the reconciler's one entry point for the server.
type Manager struct {
	cfg   Config
	pool  *sshexec.Pool
	nodes *node.Reconciler
	deps  *deployment.Reconciler
	ctls  []*controller.Controller
	depl  *controller.Controller
	// notifier sends events until Run returns.
	notifier *notify.Notifier
	// srcs syncs ManifestSources; pushes holds webhook pushes to handle.
	srcs   *controller.Controller
	pushes chan api.Push
	events *events.Recorder
	// analytics collects traffic and disk metrics (nil: off).
	analytics *analytics.Collector
}

// New builds the controllers. The deployment controller runs only
// when the store also keeps rollouts (store.Rollouts).
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	signer, err := sshexec.ParsePrivateKey(cfg.Identity.PrivatePEM)
	if err != nil {
		return nil, fmt.Errorf("ssh identity: %w", err)
	}
	m := &Manager{cfg: cfg, pushes: make(chan api.Push, pushQueueLen)}
	m.pool, err = sshexec.NewPool(sshexec.Config{Signer: signer})
	if err != nil {
		return nil, err
	}
	conn := m.connector()
	opts := func(kind string) controller.Options {
		return controller.Options{Kind: kind, Workers: cfg.Workers, Resync: cfg.Resync, BaseBackoff: cfg.BaseBackoff,
			MaxBackoff: cfg.MaxBackoff, Locker: cfg.Locker, LockRetry: cfg.LockRetry, Logger: cfg.Logger}
	}
	for _, t := range cfg.Notify {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	if len(cfg.Notify) > 0 {
		m.notifier = notify.New(cfg.Notify, notify.WithLogger(cfg.Logger))
	}
	rec := events.NewRecorder(cfg.Store, m.notifier, cfg.Logger)
	m.events = rec
	mirrors := &source.Mirrors{Dir: filepath.Join(cfg.DataDir, "mirrors"), Logger: cfg.Logger}
	m.nodes = &node.Reconciler{Store: cfg.Store, Connector: conn, Resync: cfg.Resync, Logger: cfg.Logger,
		DiskLowPercent: cfg.DiskLowPercent, StatusRefresh: cfg.NodeStatusRefresh, Events: rec}
	m.ctls = append(m.ctls, controller.New(cfg.Store, m.nodes, opts(api.KindNode)))
	if ds, ok := cfg.Store.(deployment.Store); ok {
		m.deps = &deployment.Reconciler{Store: ds, Connector: conn, Mirrors: mirrors,
			Resync: cfg.Resync, StepTimeout: cfg.StepTimeout, KeepRollouts: cfg.KeepRollouts, Logger: cfg.Logger, Events: rec,
			ACMEServer: cfg.ACMEServer, RenewBefore: cfg.CertRenewBefore, CertRetry: cfg.CertRetry,
			Ports: cfg.Ports, ServerID: cfg.ServerID, Keyring: cfg.Keyring}
		m.depl = controller.New(cfg.Store, m.deps, opts(api.KindDeployment))
		m.ctls = append(m.ctls, m.depl)
		if ss, ok := cfg.Store.(store.Settings); ok && cfg.AnalyticsInterval >= 0 {
			m.analytics = &analytics.Collector{Store: cfg.Store, Settings: ss, Connector: conn, Locker: cfg.Locker, Logger: cfg.Logger,
				Interval: cfg.AnalyticsInterval, Retention: cfg.AnalyticsRetention}
		}
	} else {
		cfg.Logger.Warn("the store keeps no rollouts: deployments are stored but not rolled out")
	}
	srcRec := &manifestsource.Reconciler{Store: cfg.Store, Mirrors: mirrors, DeleteViaLoop: m.deps != nil,
		AllowLocalNodes: cfg.AllowLocalNodes, Logger: cfg.Logger, Events: rec}
	m.srcs = controller.New(cfg.Store, srcRec, opts(api.KindManifestSource))
	m.ctls = append(m.ctls, m.srcs)
	return m, nil
}

// connector hands out the executors for nodes: local ones only when the
// server allows them (Config.AllowLocalNodes), else their commands fail
// with nodeconn.ErrLocalNodesDisabled.
func (m *Manager) connector() nodeconn.SSHConnector {
	c := nodeconn.SSHConnector{Pool: m.pool}
	if m.cfg.AllowLocalNodes {
		c.Local = sshexec.NewLocal()
	}
	return c
}

// Run runs every controller until ctx ends, then delivers the
// notifications still queued (for a few seconds at most).
func (m *Manager) Run(ctx context.Context) error {
	defer m.pool.Close()
	defer m.notifier.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.pushLoop(ctx)
	}()
	if m.analytics != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.analytics.Run(ctx)
		}()
	}
	if m.depl != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.watchSecrets(ctx)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.watchNodes(ctx)
		}()
	}
	for _, c := range m.ctls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// EnqueueKey asks for the object named by key ("Kind/name") to be
// reconciled soon; unknown kinds are ignored. Another control plane's
// orphaned keys come in here.
func (m *Manager) EnqueueKey(key string) {
	req, err := reconciler.ParseRequest(key)
	if err != nil {
		return
	}
	for _, c := range m.ctls {
		if c.Kind() == req.Kind {
			c.Enqueue(req.Name)
		}
	}
}

// PublicKey returns the control plane's public key (authorized_keys line).
func (m *Manager) PublicKey() string { return m.cfg.Identity.AuthorizedKey }

// VerifyNode connects to a node now, observes it and records the result
// in its status, even when the node is stalled (a fixed host key or a
// re-installed node is then picked up), and returns the node.
func (m *Manager) VerifyNode(ctx context.Context, name string) (*api.Node, error) {
	if _, err := m.cfg.Store.Get(ctx, api.KindNode, name); err != nil {
		return nil, err
	}
	_, rerr := m.nodes.Verify(ctx, name)
	o, err := m.cfg.Store.Get(ctx, api.KindNode, name)
	if err != nil {
		return nil, err
	}
	_ = rerr // the outcome is in the node's status
	return o.(*api.Node), nil
}
