#!/bin/sh
# The container's entry point (see Dockerfile): serves / with
# "$GREETING from <version>" and /healthz with ok on $PORT, with busybox httpd.
set -e
printf '%s from %s\n' "${GREETING:-hello}" "$(cat /VERSION)" >/www/index.html
echo "hello $(cat /VERSION) listening on port $PORT"
exec httpd -f -v -p "$PORT" -h /www
