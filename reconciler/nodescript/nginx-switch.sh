#!/bin/sh
# nginx-switch has the bakery-sudo helper render and install the app's site
# from its parameters (SITEARGS), reloads nginx, then waits until nginx
# answers from the new slot (its X-Bakery-Slot header): a reload returns
# before the new workers take over, and the old slot must not be stopped
# while old workers still send to it.
# Environment: BAKERY_SUDO, APP, SLOT, SITEARGS, HOSTS (space-separated),
# HPATH, TOKEN (the site's token when hosts are served over HTTPS, else
# empty).
set -u
set -f # SITEARGS: validated words, split but never globbed
# shellcheck disable=SC2086
sudo -n "$BAKERY_SUDO" nginx-site-install $SITEARGS || exit 1
sudo -n "$BAKERY_SUDO" nginx-reload || exit 1
# With TLS, every host with a certificate must answer over HTTPS from the
# site just written (its token), else HOST over HTTP.
probe() {
  if [ -n "$TOKEN" ]; then
    # The certificate need not verify here: only which site answers counts.
    curl -s -k -o /dev/null -D - -m 2 --resolve "$1:443:127.0.0.1" "https://$1$HPATH"
  else
    curl -s -o /dev/null -D - -m 2 -H "Host: $1" "http://127.0.0.1:80$HPATH"
  fi
}
serves() {
  h=$(probe "$1" 2>/dev/null | tr -d '\r')
  printf '%s\n' "$h" | grep -qix "x-bakery-slot: $APP/$SLOT" || return 1
  [ -z "$TOKEN" ] || printf '%s\n' "$h" | grep -qix "x-bakery-site: $TOKEN"
}
i=0
while [ $i -lt 200 ]; do
  all=1
  for h in $HOSTS; do serves "$h" || { all=; break; }; done
  if [ -n "$all" ]; then
    echo "bakery: nginx now serves from the $SLOT slot"; exit 0
  fi
  i=$((i + 1)); sleep 0.05
done
echo "bakery: nginx did not switch to the $SLOT slot within 10s" >&2
exit 1
