package deployment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/sshexec"
)

// Build once, run the same bytes everywhere (spec.build.on one, issue 18).
// One node — the source — has the release: it builds and tests it in this
// rollout (the builder), or built it before. Its pack step writes the
// release as one archive (nodescript.Pack), which the control plane reads
// over the node's SSH connection into a temporary file, hashing it as it
// arrives. Every other node that lacks the release — a receiver — skips
// fetch, build and test: once the archive is there, its ship step uploads
// it over the receiver's own connection and unpacks it
// (nodescript.Unpack), which checks the SHA-256 first. The release id is
// the same on every node; only how it comes to exist changes, so the
// rest of a node's prepare (install, start, health) runs as before.

const (
	// ActPack packs the release on the node that has it, for the others
	// (spec.build.on one).
	ActPack ActionType = "pack"
	// ActShip uploads the packed release to a node that lacks it and
	// unpacks it there, instead of fetch and build.
	ActShip ActionType = "ship"
)

// shipCandidate is what choosing the source needs of one target node.
type shipCandidate struct {
	name string
	// builder: labelled bakery.dev/builder=true.
	builder bool
	// reachable: observed in this reconcile, and not leaving the app.
	reachable bool
	// has: the release is built on it already.
	has bool
	// needs: it must build the release in this rollout (its plan has a
	// build step).
	needs bool
}

// chooseShip picks the source of a release and its receivers among the
// candidates (sorted by name), for spec.build.on one. A node that has the
// release already is the source (a labelled builder first), so nothing is
// built; else the builder is a labelled node among those that need it,
// else the first of them by name. Receivers are the other nodes that need
// it. src is -1 when nothing is shipped: no node needs the release, or
// only one does and no other has it (it builds it itself).
func chooseShip(cands []shipCandidate) (src int, receivers []int, build bool) {
	pick := func(ok func(c shipCandidate) bool) int {
		first := -1
		for i, c := range cands {
			if !ok(c) {
				continue
			}
			if c.builder {
				return i
			}
			if first < 0 {
				first = i
			}
		}
		return first
	}
	src = pick(func(c shipCandidate) bool { return c.reachable && c.has })
	if src < 0 {
		src, build = pick(func(c shipCandidate) bool { return c.reachable && c.needs }), true
	}
	if src < 0 {
		return -1, nil, false
	}
	for i, c := range cands {
		if i != src && c.needs && c.reachable {
			receivers = append(receivers, i)
		}
	}
	if len(receivers) == 0 {
		return -1, nil, false
	}
	return src, receivers, build
}

// shipPlan rewrites prepare phases for shipping: the builder packs after
// its build; a receiver's fetch and build become one ship step.
func shipPlan(prepare []Action, role string) []Action {
	var out []Action
	for _, a := range prepare {
		switch {
		case role == "builder" && a.Type == ActBuild:
			out = append(out, a, Action{Type: ActPack, Commit: a.Commit, Release: a.Release})
		case role == "receiver" && a.Type == ActFetch:
		case role == "receiver" && a.Type == ActBuild:
			out = append(out, Action{Type: ActShip, Commit: a.Commit, Release: a.Release})
		default:
			out = append(out, a)
		}
	}
	return out
}

// shipment is one packed release on its way to the receivers.
type shipment struct {
	src       int // target index of the source
	srcRun    *nodeRun
	build     bool // the source builds the release in this rollout
	receivers []int
	release   string
	format    string
	hook      func(node string, r io.Reader) io.Reader

	packOnce   sync.Once // packs a release built before (build false)
	finishOnce sync.Once
	ready      chan struct{} // closed when packed, or when the source failed
	// Set before ready closes.
	file         string // the archive on the control plane
	size         int64
	sum          string
	packTook     time.Duration
	notShippable bool  // the release has links out of itself: receivers build
	err          error // the source failed (its *stepError)
}

// planShipment decides, for spec.build.on one, which node's release the
// others receive, and rewrites the pending nodes' prepare phases. It
// returns nil when nothing is shipped.
func (pr *phaseRun) planShipment(spec *api.DeploymentSpec, pending []int, logs *rolloutlog.Sink) *shipment {
	if spec.Build.On == api.BuildOnEach {
		return nil
	}
	p := pr.p
	isPending := map[int]bool{}
	for _, i := range pending {
		isPending[i] = true
	}
	cands := make([]shipCandidate, len(p.targets))
	var rel string
	for i, t := range p.targets {
		n := p.runs[i]
		c := shipCandidate{name: t.node.Metadata.Name, builder: t.node.Metadata.Labels[api.BuilderLabel] == "true",
			reachable: n != nil && p.errs[i] == nil && !t.remove}
		if c.reachable {
			rel = nf.ReleaseID(n.desired.Commit, n.desired.BuildHash)
			c.has = n.obs.Releases[rel] == n.desired.BuildHash
			c.needs = isPending[i] && slices.ContainsFunc(pr.ph[i].prepare, func(a Action) bool { return a.Type == ActBuild })
		}
		cands[i] = c
	}
	src, receivers, build := chooseShip(cands)
	if src < 0 {
		return nil
	}
	s := &shipment{src: src, srcRun: p.runs[src], build: build, receivers: receivers, release: rel, format: nodescript.FormatGzip,
		hook: pr.r.ShipHook, ready: make(chan struct{})}
	if s.srcRun.log == nil { // a source with nothing else to do in this rollout
		n := s.srcRun
		n.log = func(stream, text string) { logs.Add(n.node, stream, text) }
	}
	if !isDocker(spec) && hasTool(p.targets[src], "zstd") {
		s.format = nodescript.FormatZstd
		for _, i := range receivers {
			if !hasTool(p.targets[i], "zstd") {
				s.format = nodescript.FormatGzip
			}
		}
	}
	if build {
		pr.ph[src].prepare = shipPlan(pr.ph[src].prepare, "builder")
	}
	var names []string
	for _, i := range receivers {
		pr.ph[i].prepare = shipPlan(pr.ph[i].prepare, "receiver")
		p.runs[i].ship = s
		names = append(names, cands[i].name)
	}
	s.srcRun.ship = s
	how := "builds and tests it"
	if !build {
		how = "has it already"
	}
	s.srcRun.logf("build once (spec.build.on one): this node %s; %v receive release %s as a %s archive", how, names, api.ShortCommit(rel), s.format)
	return s
}

func hasTool(t target, tool string) bool { return slices.Contains(t.node.Status.Tools, tool) }

// finish records how the source ended (err nil: packed, or not
// shippable) and lets the receivers go on.
func (s *shipment) finish(err error) {
	s.finishOnce.Do(func() {
		s.err = err
		close(s.ready)
	})
}

// wait waits until the archive is ready, packing a release the source
// built before (the first receiver to ask does it).
func (s *shipment) wait(ctx context.Context) error {
	if !s.build {
		// A source that built the release before packs it for the first
		// receiver that asks (logged on the source, not a step of its own:
		// the source may have nothing to do in this rollout).
		s.packOnce.Do(func() {
			if err := s.pack(ctx, s.srcRun); err != nil {
				s.finish(&stepError{step: ActPack, class: ClassifyFailure(ActPack, err), err: err})
				return
			}
			s.finish(nil)
		})
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.err != nil {
		return &sourceError{node: s.srcRun.node, err: s.err}
	}
	return nil
}

// cleanup removes the archive from the control plane.
func (s *shipment) cleanup() {
	s.finish(errors.New("the rollout ended"))
	if s.file != "" {
		os.Remove(s.file)
	}
}

// sourceError is a receiver's failure because its source failed: it has
// the source's class (a builder's failed test is the revision's; a builder
// that dropped its connection is the infrastructure's).
type sourceError struct {
	node string
	err  error
}

func (e *sourceError) Error() string {
	return fmt.Sprintf("the release comes from node %s, which failed: %v", e.node, e.err)
}
func (e *sourceError) Unwrap() error { return e.err }

func (e *sourceError) class() FailureClass {
	if infraError(e.err) {
		return FailureInfrastructure
	}
	return FailureRevision
}

// pack packs the release on the source node n into a temporary file on
// the control plane, hashing it on the way in.
func (s *shipment) pack(ctx context.Context, n *nodeRun) error {
	start := time.Now()
	f, err := os.CreateTemp("", "bakery-ship-*.archive")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer f.Close()
	s.file = f.Name()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	cmd, err := nodescript.Pack.Command(nodescript.PackInput{App: n.app, Release: s.release, Runtime: n.spec.Runtime, Format: s.format, BuildHash: n.desired.BuildHash})
	if err != nil {
		return err
	}
	cmd.Timeout, cmd.Stdout = n.timeout, cw
	cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) { n.log(l.Stream.String(), l.Text) })
	_, err = n.ex.Run(ctx, cmd)
	var ee *sshexec.ExitError
	if errors.As(err, &ee) && ee.Code == nodescript.ExitNotShippable {
		s.notShippable = true
		n.logf("the release cannot be shipped: every other node builds it itself")
		return nil
	}
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	s.size, s.sum, s.packTook = cw.n, hex.EncodeToString(h.Sum(nil)), time.Since(start)
	n.logf("packed release %s: %s (%s, sha256 %s) in %d ms", api.ShortCommit(s.release), api.HumanBytes(s.size), s.format, s.sum[:12], s.packTook.Milliseconds())
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// packStep is the builder's pack step: the archive is ready for the
// receivers once it ends.
func (n *nodeRun) packStep(ctx context.Context) error {
	s := n.ship
	if s == nil {
		return errors.New("pack: no shipment planned")
	}
	err := s.pack(ctx, n)
	if err != nil {
		s.finish(&stepError{step: ActPack, class: ClassifyFailure(ActPack, err), err: err})
		return err
	}
	s.finish(nil)
	return nil
}

// awaitShipment holds a receiver back until its source packed the
// release (outside its steps, so its ship step times the transfer
// alone). A failed source fails the receiver with the source's class,
// recorded as its ship step.
func (pr *phaseRun) awaitShipment(ctx context.Context, i int) error {
	n := pr.p.runs[i]
	if n.ship == nil || n.ship.src == i {
		return nil
	}
	if !slices.ContainsFunc(pr.ph[i].prepare, func(a Action) bool { return a.Type == ActShip }) {
		return nil
	}
	n.logf("waiting for the release from node %s", n.ship.srcRun.node)
	err := n.ship.wait(ctx)
	if err == nil {
		return nil
	}
	idx := pr.rec.StepStart(n.node, string(ActShip))
	pr.rec.StepEnd(n.node, idx, err)
	class := ClassifyFailure(ActShip, err)
	var se *sourceError
	if errors.As(err, &se) {
		class = se.class()
	}
	n.log(api.StreamBakery, fmt.Sprintf("step ship failed: %v", err))
	return &stepError{step: ActShip, class: class, err: err}
}

// receive is a receiver's ship step: upload the archive over the node's
// connection and unpack it there (its SHA-256 checked first). One
// corrupted upload is tried again; a second is refused for good. A
// release that cannot be shipped is built here instead.
func (n *nodeRun) receive(ctx context.Context, rt Runtime, a Action) error {
	s := n.ship
	if s == nil {
		return errors.New("ship: no shipment planned")
	}
	if err := s.wait(ctx); err != nil {
		return err
	}
	if s.notShippable {
		n.logf("the release cannot be shipped: building it here")
		if err := n.fetch(ctx, a.Commit); err != nil {
			return err
		}
		if b, ok := rt.(builder); ok {
			return b.Build(ctx, n, a.Commit, a.Release)
		}
		return n.build(ctx, a.Commit, a.Release)
	}
	if _, err := run(ctx, n, nodescript.AppDir, nodescript.AppInput{App: n.app}); err != nil {
		return err
	}
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		err = n.upload(ctx, s)
		var ee *sshexec.ExitError
		if !errors.As(err, &ee) || ee.Code != nodescript.ExitHashMismatch {
			return err
		}
		if attempt == 1 {
			n.logf("the archive arrived corrupted (its SHA-256 differs): sending it once more")
		}
	}
	return fmt.Errorf("the archive arrived corrupted twice, refused by its SHA-256: %w", err)
}

// upload sends the archive to the node and unpacks it.
func (n *nodeRun) upload(ctx context.Context, s *shipment) error {
	f, err := os.Open(s.file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if s.hook != nil {
		r = s.hook(n.node, r)
	}
	start := time.Now()
	remote := path.Join(nf.AppDir(n.app), ".incoming-"+s.release+".archive")
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: remote, Mode: 0o600, Reader: r, Size: s.size}); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	sent := time.Since(start)
	if _, err := run(ctx, n, nodescript.Unpack, nodescript.UnpackInput{App: n.app, Release: s.release, Runtime: n.spec.Runtime,
		Format: s.format, Archive: remote, SHA256: s.sum, BuildHash: n.desired.BuildHash}); err != nil {
		return err
	}
	took := time.Since(start)
	n.logf("shipped %s in %d ms from node %s (%d bytes; upload %d ms, check and unpack %d ms; sha256 %s)", api.HumanBytes(s.size), took.Milliseconds(),
		s.srcRun.node, s.size, sent.Milliseconds(), (took - sent).Milliseconds(), s.sum[:12])
	return nil
}

// sourceFailed lets the receivers go on (to fail) when node i, the
// source, failed before its archive was ready.
func (pr *phaseRun) sourceFailed(i int, err error) {
	if pr.ship != nil && pr.ship.build && pr.ship.src == i {
		pr.ship.finish(err)
	}
}

// sourceFirst moves the source to the front of the nodes to prepare, so
// that a maxParallel smaller than the receivers never has them all wait
// for a source that cannot start.
func sourceFirst(pending []int, src int) []int {
	out := []int{}
	if slices.Contains(pending, src) {
		out = append(out, src)
	}
	for _, i := range pending {
		if i != src {
			out = append(out, i)
		}
	}
	return out
}
