#!/bin/sh
# observe-app prints, in one round trip, everything Plan needs about one
# app on a node (ParseAppObservation reads it). It only reads.
# Environment: BAKERY_ROOT, BAKERY_SUDO, APP, RUNTIME ("docker" or empty),
# SITE (the app's nginx site), CERTS (TLS host names, space-separated),
# PERSIST (1: report the persistent directories' sizes).
set -u
d=$BAKERY_ROOT/apps/$APP
if [ -f "$d/state.json" ]; then printf 'state '; tr -d '\n' < "$d/state.json"; echo; fi
for s in blue green; do
  st=$(systemctl show -p ActiveState --value "bakery-$APP-$s.service" 2>/dev/null) || st=unknown
  echo "unit $s ${st:-unknown}"
  if [ "$(systemctl show -p Result --value "bakery-$APP-$s.service" 2>/dev/null)" = oom-kill ]; then echo "oom $s"; fi
done
# The slots' process instances (spec.processes): "proc SLOT-PROC@N.service STATE"
# for the unit bakery-APP-SLOT-PROC@N.service.
systemctl list-units --all --plain --no-legend "bakery-$APP-blue-*@*.service" "bakery-$APP-green-*@*.service" 2>/dev/null |
  awk -v p="bakery-$APP-" 'index($1, p) == 1 {print "proc " substr($1, length(p) + 1) " " $3}'
if [ "$RUNTIME" = docker ] || grep -qs '"dockerized": true' "$d/state.json"; then
  if ! command -v docker >/dev/null 2>&1; then
    echo "docker-error docker is not installed on this node (install-node-agent.sh installs it unless --no-docker)"
  elif ! imgs=$(docker image ls --format '{{.Tag}}' "bakery/$APP" 2>&1); then
    echo "docker-error $(printf '%s' "$imgs" | head -n 1)"
  else
    echo docker
    for t in $imgs; do echo "image $t"; done
    # Process containers as "proc SLOT-PROC@N.service STATE" (running: active).
    docker ps -a --filter "label=bakery.app=$APP" --filter label=bakery.process \
      --format 'proc {{.Label "bakery.slot"}}-{{.Label "bakery.process"}}@{{.Label "bakery.replica"}}.service {{.State}}' |
      sed 's/ running$/ active/; s/ restarting$/ activating/'
    docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.Config.Image}} {{or (index .Config.Labels "bakery.commit") "-"}} {{or (index .Config.Labels "bakery.revision") "-"}}' "bakery-$APP-blue" "bakery-$APP-green" 2>/dev/null | sed 's/^/container /'
    docker inspect --format '{{if .State.OOMKilled}}oom {{index .Config.Labels "bakery.slot"}}{{end}}' "bakery-$APP-blue" "bakery-$APP-green" 2>/dev/null | grep '^oom ' || true
  fi
fi
names=
for t in /etc/systemd/system/bakery-"$APP"-sched-*.timer; do
  [ -f "$t" ] || continue
  n=${t##*/bakery-"$APP"-sched-}; n=${n%.timer}
  # Another app's schedule can match the pattern (app a-sched-b, schedule c): the
  # Description says whose it is.
  grep -qxF "Description=Bakery app $APP, schedule $n" "$t" || continue
  echo "sched $n $(cat "$t" "/etc/systemd/system/bakery-$APP-sched-$n.service" "$d/run/sched-$n.sh" 2>/dev/null | sha256sum | cut -d' ' -f1)"
  names="$names $n"
done
if [ -n "$names" ]; then
  # systemd 252 prints the timers' times in local time whatever --timestamp says.
  echo "tz $(date +%z)"
  # One systemctl show per kind for every schedule: it prints one block per unit, in
  # the order given, separated by empty lines.
  for kind in timer service; do
    set --
    for n in $names; do set -- "$@" "bakery-$APP-sched-$n.$kind"; done
    if [ "$kind" = timer ]; then p="-p ActiveState -p LastTriggerUSec -p NextElapseUSecRealtime"
    else p="-p ActiveState -p Result -p ExecMainStatus -p ExecMainStartTimestamp -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic"; fi
    # shellcheck disable=SC2086 # one word per option
    systemctl show --timestamp=unix $p -- "$@" 2>/dev/null |
      awk -v names="$names" -v kind="$kind" 'BEGIN { split(names, a, " "); i = 1 } /^$/ { i++; next } { print "schedprop " a[i] " " kind " " $0 }'
  done
fi
if [ -f "$SITE" ]; then echo "site $(sha256sum < "$SITE" | cut -d' ' -f1)"; else echo "site -"; fi
if [ -d "$d/releases" ]; then
  for r in "$d"/releases/*; do
    [ -d "$r" ] || continue
    b=-; [ -f "$r/.bakery-built" ] && b=$(cat "$r/.bakery-built")
    echo "release ${r##*/} ${b:--}"
  done
fi
if [ -d "$d/repo.git" ]; then git --git-dir="$d/repo.git" for-each-ref --format='have %(objectname)' refs/bakery/ 2>/dev/null; fi
for f in "$BAKERY_ROOT"/apps/*/state.json; do
  [ -f "$f" ] || continue
  [ "$f" = "$d/state.json" ] && continue
  printf 'other '; tr -d '\n' < "$f"; echo
done
ss -Hltn 2>/dev/null | awk '{n=split($4, a, ":"); print "listen " a[n]}'
if [ -n "$CERTS" ]; then
  # One argument per host: CERTS is split on purpose (validated host names).
  # shellcheck disable=SC2086
  if c=$(sudo -n "$BAKERY_SUDO" cert-info $CERTS 2>/dev/null); then printf '%s\n' "$c"
  else echo "certerr the node's bakery-sudo helper cannot report certificates (cert-info): re-run install-node-agent.sh on it"; fi
fi
if [ -n "${PERSIST:-}" ]; then
  sudo -n "$BAKERY_SUDO" data-usage "$APP" 2>/dev/null || true
fi
exit 0
