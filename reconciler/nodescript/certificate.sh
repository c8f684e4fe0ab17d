#!/bin/sh
# certificate makes nginx serve the ACME challenge for the app's hosts (the
# helper renders the site for the certificates there are from SITEARGS),
# waits until the reloaded nginx does, runs certbot and prints the new
# certificate's line ("cert HOST NOTAFTER SERIAL", read by FindCert).
# Environment: BAKERY_SUDO, APP, SITEARGS, HOST, EMAIL, SERVER (ACME
# directory URL), HDR (the header nginx sends from the challenge location).
set -u
set -f # SITEARGS: validated words, split but never globbed
# shellcheck disable=SC2086
r=$(sudo -n "$BAKERY_SUDO" nginx-site-install $SITEARGS) || exit 1
if [ "$r" = changed ]; then sudo -n "$BAKERY_SUDO" nginx-reload || exit 1; fi
i=0
until curl -s -o /dev/null -D - -m 2 -H "Host: $HOST" "http://127.0.0.1:80/.well-known/acme-challenge/bakery-probe" 2>/dev/null | tr -d '\r' | grep -qix "$HDR: 1"; do
  i=$((i + 1))
  if [ $i -ge 200 ]; then echo "bakery: nginx does not serve the ACME challenge location for $HOST within 10s" >&2; exit 1; fi
  sleep 0.05
done
echo "bakery: requesting a certificate for $HOST from $SERVER (HTTP-01)"
sudo -n "$BAKERY_SUDO" certbot-certonly "$HOST" --email "$EMAIL" --server "$SERVER" || exit 1
sudo -n "$BAKERY_SUDO" cert-info "$HOST"
