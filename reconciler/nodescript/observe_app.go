package nodescript

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// ObserveAppInput is the input of observe-app.
type ObserveAppInput struct {
	App string
	// Runtime is the spec's runtime: with api.RuntimeDocker the app's
	// containers and images are observed too (so they are when its state
	// file says it is dockerized).
	Runtime string
	// CertHosts are the TLS hosts (validated host names, ingress.tls)
	// whose certificates are read through the bakery-sudo helper.
	CertHosts []string
	// Persistent says to report the sizes of the app's persistent
	// directories (spec.persistent), read through the helper's
	// data-usage (du -s, bounded).
	Persistent bool
}

// ObserveApp prints, in one round trip, everything Plan needs about one
// app on a node; it only reads. [ParseAppObservation] reads its output.
// Line formats:
//
//	state <state.json on one line>
//	unit <slot> <ActiveState>
//	oom <slot>  (the slot's unit ended with Result=oom-kill, or its container OOMKilled)
//	persistent <path> <KiB>|-  (a persistent directory's size; - when du failed)
//	proc <SLOT-PROC@N.service, of the unit bakery-APP-SLOT-PROC@N.service> <ActiveState>
//	site <sha256 of the nginx site> | site -
//	release <commit> <build hash | ->
//	have <commit in the node's repo>
//	other <another app's state.json on one line>
//	listen <TCP port something listens on>
//
// For a docker app (runtime docker, or a state file saying dockerized)
// also, from `docker image ls` and `docker inspect`:
//
//	docker
//	image <tag of the app's image repository>
//	container <name> <status> <health | -> <image> <commit label | -> <revision label | ->
//	docker-error <why docker cannot be asked>
//
// and for CertHosts:
//
//	cert <host> <notAfter, unix seconds> <serial> | cert <host> -
//	certerr <message>
//
// and per schedule of the app (its timer's Description names the app):
//
//	sched <name> <sha256 of its timer, service and script, concatenated>
//	tz <the node's UTC offset, +hhmm>
//	schedprop <name> timer|service <Property>=<value> (systemctl show --timestamp=unix;
//	  the timer's times in systemd's "Mon 2026-12-07 03:58:50 UTC" form, local time)
var ObserveApp = define("observe-app", func(in ObserveAppInput, c *call) {
	c.app(in.App)
	c.set("RUNTIME", in.Runtime)
	c.set("SITE", nf.SitePath(in.App))
	c.set("CERTS", strings.Join(in.CertHosts, " "))
	if in.Persistent {
		c.set("PERSIST", "1")
	} else {
		c.set("PERSIST", "")
	}
})

// ObserveAppOn runs observe-app on ex and parses its output.
func ObserveAppOn(ctx context.Context, ex sshexec.Executor, in ObserveAppInput, timeout time.Duration) (AppObservation, error) {
	cmd, err := ObserveApp.Command(in)
	if err != nil {
		return AppObservation{}, err
	}
	cmd.Timeout = timeout
	res, err := ex.Run(ctx, cmd)
	if err != nil {
		return AppObservation{}, err
	}
	return ParseAppObservation(string(res.Stdout))
}

// Observed is what one observe round trip found on a node for an app.
type Observed struct {
	// State is the app's state file (nil: the app has never been deployed).
	State *nf.AppState
	// Units maps slot → systemd ActiveState ("active", "inactive", "failed", "activating", …).
	Units map[string]string
	// Procs maps slot → process → instance → the ActiveState of its
	// unit, for the process instances systemd has loaded.
	Procs map[string]map[string]map[int]string
	// SiteHash is the SHA-256 (nf.Hash of the content) of the
	// app's nginx site, "" when absent.
	SiteHash string
	// Releases maps release (nf.ReleaseID) → the build hash its
	// marker holds ("" = checked out but not built).
	Releases map[string]string
	// UsedPorts holds the ports other apps' slots use on the node.
	UsedPorts map[int]bool
	// Certs are the certificates found for the TLS hosts (a host without
	// one is absent).
	Certs map[string]Cert
	// Schedules are the app's schedules installed on the node, by name.
	Schedules map[string]SchedObservation
	// OOMKilled holds the slots whose unit (container) the kernel's OOM
	// killer stopped last (systemd Result=oom-kill, docker
	// State.OOMKilled).
	OOMKilled map[string]bool
	// Persistent maps each persistent directory found to its size in
	// bytes (-1: unknown), when asked for (ObserveAppInput.Persistent).
	Persistent map[string]int64
}

// SchedObservation is one schedule's timer and service on a node.
type SchedObservation struct {
	// Hash is the SHA-256 of its timer, service and script
	// (nodefiles.SchedHash).
	Hash string
	// TimerState is the timer's ActiveState (active: it is scheduled).
	TimerState string
	// ServiceState is the service's ActiveState (activating: a run is
	// going on, for concurrency Forbid).
	ServiceState string
	// Result is the service's Result of its last run (success,
	// exit-code, timeout, signal, …), ExitStatus its main process's.
	Result     string
	ExitStatus int
	// LastStart is when the last run started (zero: never), Duration how
	// long it took (0 while it runs); NextRun when the timer elapses next.
	LastStart time.Time
	Duration  time.Duration
	NextRun   time.Time
	// LastTrigger is when the timer last fired.
	LastTrigger time.Time
	startMono   int64
	exitMono    int64
}

// Cert is a certificate found on a node.
type Cert struct {
	NotAfter time.Time
	// Serial is the serial number in hex.
	Serial string
}

// AppObservation is Observed plus what source delivery needs.
type AppObservation struct {
	Observed
	// Haves are the commits the node's repository already holds.
	Haves []string
	// Listening are the TCP ports something listens on.
	Listening map[int]bool
	// Docker says the app's containers and images were observed (runtime
	// docker): Units then holds the containers' states.
	Docker bool
	// Containers holds the slots' containers as docker inspect showed them.
	Containers map[string]Container
	// Images holds the tags of the app's images (one per built release).
	Images map[string]bool
	// tzOffset is the node's UTC offset in seconds (its timers' times are
	// local).
	tzOffset int
}

// Container is one slot's docker container as observed.
type Container struct {
	Status string // docker's State.Status: running, exited, restarting, …
	Health string // State.Health.Status ("" without a HEALTHCHECK)
	Image  string // the image reference it was created from
	Commit string // its bakery.commit label
	// Revision is its bakery.revision label.
	Revision string
}

// ParseAppObservation parses the output of observe-app.
func ParseAppObservation(out string) (AppObservation, error) {
	o := AppObservation{Listening: map[int]bool{}, Containers: map[string]Container{}, Images: map[string]bool{}, Observed: Observed{
		Units:      map[string]string{},
		Procs:      map[string]map[string]map[int]string{},
		Releases:   map[string]string{},
		UsedPorts:  map[int]bool{},
		Certs:      map[string]Cert{},
		Schedules:  map[string]SchedObservation{},
		OOMKilled:  map[string]bool{},
		Persistent: map[string]int64{},
	}}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if err := o.parseLine(sc.Text()); err != nil {
			return o, err
		}
	}
	if o.Docker {
		o.dockerUnits()
	}
	// A port something listens on is used, unless it is one of this
	// app's own slots (which may be running).
	own := map[int]bool{}
	if o.State != nil {
		for _, s := range o.State.Slots {
			own[s.Port] = true
		}
	}
	for p := range o.Listening {
		if !own[p] {
			o.UsedPorts[p] = true
		}
	}
	return o, sc.Err()
}

// parseLine records one line of observe-app's output.
func (o *AppObservation) parseLine(line string) error {
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "state":
		st, err := nf.ParseState([]byte(rest))
		if err != nil {
			return err
		}
		o.State = st
	case "unit":
		slot, state, _ := strings.Cut(rest, " ")
		if slot == nf.Blue || slot == nf.Green {
			o.Units[slot] = state
		}
	case "proc":
		unit, state, _ := strings.Cut(rest, " ")
		o.parseProc(unit, state)
	case "oom":
		if rest == nf.Blue || rest == nf.Green {
			o.OOMKilled[rest] = true
		}
	case "persistent":
		p, kib, _ := strings.Cut(rest, " ")
		if api.ValidatePersistentPath(p) != "" {
			return fmt.Errorf("observe: bad persistent line %q", line)
		}
		n, err := strconv.ParseInt(kib, 10, 64)
		if err != nil {
			n = -1
		} else {
			n *= 1024
		}
		o.Persistent[p] = n
	case "site":
		if rest != "-" {
			o.SiteHash = rest
		}
	case "release":
		commit, built, _ := strings.Cut(rest, " ")
		if built == "-" {
			built = ""
		}
		o.Releases[commit] = built
	case "have":
		o.Haves = append(o.Haves, rest)
	case "other":
		o.parseOther(rest)
	case "listen":
		if p, err := strconv.Atoi(rest); err == nil {
			o.Listening[p] = true
		}
	case "docker":
		o.Docker = true
	case "docker-error":
		return fmt.Errorf("docker: %s", rest)
	case "image":
		o.Images[rest] = true
	case "container":
		return o.parseContainer(line, rest)
	case "cert":
		host, c, ok, err := parseCertLine(rest)
		if err != nil {
			return err
		}
		if ok {
			o.Certs[host] = c
		}
	case "certerr":
		return fmt.Errorf("observe certificates: %s", rest)
	case "sched":
		name, hash, _ := strings.Cut(rest, " ")
		o.Schedules[name] = SchedObservation{Hash: hash}
	case "tz":
		if t, err := time.Parse("-0700", rest); err == nil {
			_, o.tzOffset = t.Zone()
		}
	case "schedprop":
		o.parseSchedProp(rest)
	case "":
	default:
		return fmt.Errorf("unexpected observe output %q", truncate(line, 100))
	}
	return nil
}

// parseProc records a process instance's state, when its unit is one of
// this app's (SLOT-PROC@N.service with a valid PROC: another
// app whose name continues with -SLOT- has a PROC with a blue or green
// part, which no valid name has).
func (o *AppObservation) parseProc(unit, state string) {
	rest, ok := strings.CutSuffix(unit, ".service")
	if !ok {
		return
	}
	slot, rest, _ := strings.Cut(rest, "-")
	name, inst, _ := strings.Cut(rest, "@")
	n, err := strconv.Atoi(inst)
	if (slot != nf.Blue && slot != nf.Green) || api.ValidateProcessName(name) != "" || err != nil || n < 1 {
		return
	}
	if o.Procs[slot] == nil {
		o.Procs[slot] = map[string]map[int]string{}
	}
	if o.Procs[slot][name] == nil {
		o.Procs[slot][name] = map[int]string{}
	}
	o.Procs[slot][name][n] = state
}

// parseSchedProp records a "schedprop NAME timer|service KEY=VALUE" line.
func (o *AppObservation) parseSchedProp(rest string) {
	f := strings.SplitN(rest, " ", 3)
	if len(f) != 3 {
		return
	}
	s, ok := o.Schedules[f[0]]
	if !ok {
		return
	}
	key, val, _ := strings.Cut(f[2], "=")
	unixTime := func(v string) time.Time {
		if rest, ok := strings.CutPrefix(v, "@"); ok {
			if sec, err := strconv.ParseInt(rest, 10, 64); err == nil && sec > 0 {
				return time.Unix(sec, 0).UTC()
			}
			return time.Time{}
		}
		// "Mon 2026-12-07 03:58:50 UTC": the date and time, in the
		// node's local time (the zone's abbreviation is ambiguous; the
		// node said its offset).
		f := strings.Fields(v)
		if len(f) < 3 {
			return time.Time{}
		}
		t, err := time.Parse("2006-01-02 15:04:05", f[1]+" "+f[2])
		if err != nil {
			return time.Time{}
		}
		return t.Add(-time.Duration(o.tzOffset) * time.Second).UTC()
	}
	switch f[1] + " " + key {
	case "timer ActiveState":
		s.TimerState = val
	case "timer LastTriggerUSec":
		s.LastTrigger = unixTime(val)
	case "timer NextElapseUSecRealtime":
		s.NextRun = unixTime(val)
	case "service ActiveState":
		s.ServiceState = val
	case "service Result":
		s.Result = val
	case "service ExecMainStatus":
		s.ExitStatus, _ = strconv.Atoi(val)
	case "service ExecMainStartTimestamp":
		s.LastStart = unixTime(val)
	case "service ExecMainStartTimestampMonotonic":
		s.startMono, _ = strconv.ParseInt(val, 10, 64)
	case "service ExecMainExitTimestampMonotonic":
		s.exitMono, _ = strconv.ParseInt(val, 10, 64)
	}
	if s.startMono > 0 && s.exitMono >= s.startMono {
		s.Duration = time.Duration(s.exitMono-s.startMono) * time.Microsecond
	} else {
		s.Duration = 0
	}
	o.Schedules[f[0]] = s
}

// parseOther records the ports another app's slots use.
func (o *AppObservation) parseOther(state string) {
	var other nf.AppState
	if err := json.Unmarshal([]byte(state), &other); err != nil {
		return // another app's broken state file is its own problem
	}
	for _, s := range other.Slots {
		if s.Port != 0 {
			o.UsedPorts[s.Port] = true
		}
	}
}

// parseContainer records a "container" line.
func (o *AppObservation) parseContainer(line, rest string) error {
	f := strings.Fields(rest)
	if len(f) == 0 {
		return nil // docker inspect prints an empty line when no container exists
	}
	if len(f) != 6 {
		return fmt.Errorf("unexpected observe output %q", truncate(line, 100))
	}
	name := strings.TrimPrefix(f[0], "/")
	for _, slot := range nf.Slots {
		if strings.HasSuffix(name, "-"+slot) {
			c := Container{Status: f[1], Image: f[3], Commit: f[4], Revision: f[5]}
			if f[2] != "-" {
				c.Health = f[2]
			}
			o.Containers[slot] = c
		}
	}
	return nil
}

// dockerUnits puts the containers' states where Plan reads the units'
// (running → active) and counts a release as built only while its image
// exists: an image removed behind Bakery's back is rebuilt, and a rollback
// to a release whose image is still there rebuilds nothing.
func (o *AppObservation) dockerUnits() {
	for _, slot := range nf.Slots {
		c, ok := o.Containers[slot]
		var st string
		switch {
		case !ok:
			st = "absent"
		case o.State != nil && o.State.Slots[slot].Commit != "" && c.Commit != o.State.Slots[slot].Commit:
			// Not the container Bakery started for the slot.
			st = "replaced"
		case c.Status == "running" && c.Health == "unhealthy":
			st = "unhealthy"
		case c.Status == "running":
			st = "active"
		case c.Status == "restarting":
			st = "activating"
		default:
			st = c.Status
		}
		o.Units[slot] = st
	}
	for rel := range o.Releases {
		if !o.Images[rel] {
			o.Releases[rel] = ""
		}
	}
}

// parseCertLine parses what the helper's cert-info prints after "cert ":
// "HOST NOTAFTER-UNIX SERIAL", or "HOST -" when there is no certificate.
func parseCertLine(rest string) (host string, c Cert, ok bool, err error) {
	f := strings.Fields(rest)
	switch {
	case len(f) == 2 && f[1] == "-":
		return f[0], Cert{}, false, nil
	case len(f) == 3:
		sec, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return "", Cert{}, false, fmt.Errorf("certificate line %q: %w", rest, err)
		}
		return f[0], Cert{NotAfter: time.Unix(sec, 0).UTC(), Serial: f[2]}, true, nil
	}
	return "", Cert{}, false, fmt.Errorf("unexpected certificate line %q", truncate(rest, 100))
}

// FindCert finds host's certificate line in the output of cert or renew
// (also the lines observe-app prints for CERTS).
func FindCert(out, host string) (Cert, error) {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "cert ")
		if !ok {
			continue
		}
		h, c, found, err := parseCertLine(rest)
		if err != nil || h != host {
			continue
		}
		if !found {
			return Cert{}, fmt.Errorf("certbot finished but there is no certificate for %s", host)
		}
		return c, nil
	}
	return Cert{}, fmt.Errorf("the node did not report the certificate of %s", host)
}
