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
# verdict prints the last line of a failed check, which the caller reports:
# "bakery: health check URL failed after N attempts: WHY".
verdict() {
  a=attempts; [ "$1" -eq 1 ] && a=attempt
  echo "bakery: health check $url failed after $1 $a: $2" >&2
}
while :; do
  # The HTTP status on its own line; curl's error (if any) on another.
  out=$(curl -sS -o /dev/null -w '\n%{http_code}\n' -m "$TIMEOUT" "$url" 2>&1)
  rc=$?
  code=$(printf '%s\n' "$out" | grep -x '[0-9][0-9][0-9]' | tail -n 1)
  if [ "$rc" -eq 0 ] && [ "${code:-000}" -ge 200 ] && [ "${code:-000}" -lt 400 ]; then
    if [ -n "$UNIT" ]; then
      # The answer must come from this slot's unit, not from another
      # process that holds the port. ss -e names the cgroup of every
      # listening socket, also of other users' (apps run as their own
      # users), whose pids ss -p cannot show bakery-agent.
      cgs=$(ss -Hltne "sport = :$PORT" 2>/dev/null | grep -o 'cgroup:[^ ]*' | grep -vx 'cgroup:/' | sort -u)
      if [ -n "$cgs" ]; then
        if printf '%s\n' "$cgs" | grep -qv "/$UNIT\$"; then
          verdict $((fails + 1)) "it answers, but not from $UNIT: port $PORT is held by another process ($(printf '%s' "$cgs" | tr '\n' ' '))"; exit 1
        fi
      else
        pids=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
        mine=
        for p in $pids; do grep -q "/$UNIT\$" "/proc/$p/cgroup" 2>/dev/null && mine=1; done
        if [ -n "$pids" ] && [ -z "$mine" ]; then
          verdict $((fails + 1)) "it answers, but not from $UNIT: port $PORT is held by another process (pid $pids)"; exit 1
        fi
      fi
    fi
    if [ -n "$CONTAINER" ]; then
      # The answer must come from this slot's container, running.
      st=$(docker inspect --format '{{.State.Running}}' "$CONTAINER" 2>&1)
      if [ "$st" != true ]; then
        verdict $((fails + 1)) "it answers, but container $CONTAINER is not running ($st)"; exit 1
      fi
    fi
    echo "bakery: health check passed: $url answered HTTP $code"; exit 0
  fi
  # Why this attempt failed, in words.
  case $rc in
  0) why="last answer HTTP $code" ;;
  7) why="connection refused" ;;
  28) why="no answer within ${TIMEOUT}s" ;;
  52) why="the connection closed without an answer" ;;
  56) why="the connection was reset" ;;
  *) why=$(printf '%s\n' "$out" | grep '^curl: ' | tail -n 1 | sed 's/^curl: ([0-9]*) //')
     why=${why:-curl exit status $rc} ;;
  esac
  now=$(date +%s)
  if [ $((now - start)) -ge "$GRACE" ]; then
    fails=$((fails + 1))
    echo "bakery: health check $fails/$RETRIES failed: $url: $why" >&2
    if [ "$fails" -ge "$RETRIES" ]; then
      if [ -n "$CONTAINER" ]; then
        echo "bakery: container $CONTAINER: $(docker inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}' "$CONTAINER" 2>&1); its last log lines:" >&2
        docker logs --tail 20 "$CONTAINER" 2>&1 | sed 's/^/  /' >&2
      fi
      verdict "$fails" "$why"
      exit 1
    fi
  fi
  sleep "$INTERVAL"
done
