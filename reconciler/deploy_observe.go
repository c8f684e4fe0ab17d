package reconciler

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// appObserveScript prints, in one round trip, everything Plan needs about
// one app on a node. It only reads. Line formats:
//
//	state <state.json on one line>
//	unit <slot> <ActiveState>
//	site <sha256 of the nginx site> | site -
//	release <commit> <build hash | ->
//	have <commit in the node's repo>
//	other <another app's state.json on one line>
//	listen <TCP port something listens on>
//	cert <host> <notAfter, unix seconds> <serial> | cert <host> -
//	certerr <message>
//
// Certificates (ingress.tls, hosts in $CERTS) are read through the
// bakery-sudo helper: certbot keeps them where only root may look.
const appObserveScript = `d=/var/lib/bakery/apps/$APP
if [ -f "$d/state.json" ]; then printf 'state '; tr -d '\n' < "$d/state.json"; echo; fi
for s in blue green; do
  st=$(systemctl show -p ActiveState --value "bakery-$APP-$s.service" 2>/dev/null) || st=unknown
  echo "unit $s ${st:-unknown}"
done
site=/etc/nginx/conf.d/bakery-$APP.conf
if [ -f "$site" ]; then echo "site $(sha256sum < "$site" | cut -d' ' -f1)"; else echo "site -"; fi
if [ -d "$d/releases" ]; then
  for r in "$d"/releases/*; do
    [ -d "$r" ] || continue
    b=-; [ -f "$r/.bakery-built" ] && b=$(cat "$r/.bakery-built")
    echo "release ${r##*/} ${b:--}"
  done
fi
if [ -d "$d/repo.git" ]; then git --git-dir="$d/repo.git" for-each-ref --format='have %(objectname)' refs/bakery/ 2>/dev/null; fi
for f in /var/lib/bakery/apps/*/state.json; do
  [ -f "$f" ] || continue
  [ "$f" = "$d/state.json" ] && continue
  printf 'other '; tr -d '\n' < "$f"; echo
done
ss -Hltn 2>/dev/null | awk '{n=split($4, a, ":"); print "listen " a[n]}'
if [ -n "$CERTS" ]; then
  if c=$(sudo -n ` + nf.SudoHelper + ` cert-info $CERTS 2>/dev/null); then printf '%s\n' "$c"
  else echo "certerr the node's bakery-sudo helper cannot report certificates (cert-info): re-run install-node-agent.sh on it"; fi
fi
exit 0
`

// AppObservation is Observed plus what source delivery needs.
type AppObservation struct {
	Observed
	// Haves are the commits the node's repository already holds.
	Haves []string
	// Listening are the TCP ports something listens on.
	Listening map[int]bool
}

// ObserveApp observes app on one node in one round trip, with the
// certificates of certHosts (validated host names).
func ObserveApp(ctx context.Context, ex sshexec.Executor, app string, timeout time.Duration, certHosts ...string) (AppObservation, error) {
	res, err := ex.Run(ctx, sshexec.Command{Script: appObserveScript, Env: map[string]string{"APP": app, "CERTS": strings.Join(certHosts, " ")}, Timeout: timeout})
	if err != nil {
		return AppObservation{}, err
	}
	return ParseAppObservation(string(res.Stdout))
}

// ParseAppObservation parses the output of the app observe script.
func ParseAppObservation(out string) (AppObservation, error) {
	o := AppObservation{Listening: map[int]bool{}, Observed: Observed{
		Units:     map[string]string{},
		Releases:  map[string]string{},
		UsedPorts: map[int]bool{},
		Certs:     map[string]Cert{},
	}}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "state":
			st, err := nf.ParseState([]byte(rest))
			if err != nil {
				return o, err
			}
			o.State = st
		case "unit":
			slot, state, _ := strings.Cut(rest, " ")
			if slot == nf.Blue || slot == nf.Green {
				o.Units[slot] = state
			}
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
			var other nf.AppState
			if err := json.Unmarshal([]byte(rest), &other); err != nil {
				continue // another app's broken state file is its own problem
			}
			for _, s := range other.Slots {
				if s.Port != 0 {
					o.UsedPorts[s.Port] = true
				}
			}
		case "listen":
			if p, err := strconv.Atoi(rest); err == nil {
				o.Listening[p] = true
			}
		case "cert":
			host, c, ok, err := parseCertLine(rest)
			if err != nil {
				return o, err
			}
			if ok {
				o.Certs[host] = c
			}
		case "certerr":
			return o, fmt.Errorf("observe certificates: %s", rest)
		case "":
		default:
			return o, fmt.Errorf("unexpected observe output %q", truncate(sc.Text(), 100))
		}
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
