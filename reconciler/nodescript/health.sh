#!/bin/sh
# health polls the slot's health check URL until it answers (exit 0) or
# RETRIES checks after the GRACE period failed (exit 1). An answer counts
# only when it comes from the slot's own unit (UNIT) or container
# (CONTAINER), not from another process holding the port.
# Environment: PORT, HPATH, TIMEOUT, INTERVAL (seconds, may be fractional),
# RETRIES, GRACE (whole seconds), UNIT or CONTAINER (the other empty).
set -u
url="http://127.0.0.1:$PORT$HPATH"
start=$(date +%s)
fails=0
while :; do
  if out=$(curl -fsS -o /dev/null -w '%{http_code}' -m "$TIMEOUT" "$url" 2>&1); then
    if [ -n "$UNIT" ]; then
      # The answer must come from this slot's unit, not from another
      # process that holds the port. ss -e names the cgroup of every
      # listening socket, also of other users' (apps run as their own
      # users), whose pids ss -p cannot show bakery-agent.
      cgs=$(ss -Hltne "sport = :$PORT" 2>/dev/null | grep -o 'cgroup:[^ ]*' | grep -vx 'cgroup:/' | sort -u)
      if [ -n "$cgs" ]; then
        if printf '%s\n' "$cgs" | grep -qv "/$UNIT\$"; then
          echo "bakery: $url answers, but not from $UNIT: port $PORT is held by another process ($(printf '%s' "$cgs" | tr '\n' ' '))" >&2; exit 1
        fi
      else
        pids=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
        mine=
        for p in $pids; do grep -q "/$UNIT\$" "/proc/$p/cgroup" 2>/dev/null && mine=1; done
        if [ -n "$pids" ] && [ -z "$mine" ]; then
          echo "bakery: $url answers, but not from $UNIT: port $PORT is held by another process (pid $pids)" >&2; exit 1
        fi
      fi
    fi
    if [ -n "$CONTAINER" ]; then
      # The answer must come from this slot's container, running.
      st=$(docker inspect --format '{{.State.Running}}' "$CONTAINER" 2>&1)
      if [ "$st" != true ]; then
        echo "bakery: $url answers, but container $CONTAINER is not running ($st)" >&2; exit 1
      fi
    fi
    echo "bakery: health check passed: $url answered $out"; exit 0
  fi
  now=$(date +%s)
  if [ $((now - start)) -ge "$GRACE" ]; then
    fails=$((fails + 1))
    echo "bakery: health check $fails/$RETRIES failed: $url: $out" >&2
    if [ "$fails" -ge "$RETRIES" ]; then
      if [ -n "$CONTAINER" ]; then
        echo "bakery: container $CONTAINER: $(docker inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}' "$CONTAINER" 2>&1); its last log lines:" >&2
        docker logs --tail 20 "$CONTAINER" 2>&1 | sed 's/^/  /' >&2
      fi
      exit 1
    fi
  fi
  sleep "$INTERVAL"
done
