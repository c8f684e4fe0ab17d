#!/bin/sh
# renew renews one certificate lineage, reloads nginx after `nginx -t` and
# prints the new certificate's line (read by FindCert). The renewal is
# forced: Bakery, not certbot's own window, decides when a certificate is
# due.
# Environment: BAKERY_SUDO, HOST, SERVER (ACME directory URL).
set -u
sudo -n "$BAKERY_SUDO" certbot-renew "$HOST" --server "$SERVER" --force || exit 1
sudo -n "$BAKERY_SUDO" nginx-test || exit 1
sudo -n "$BAKERY_SUDO" nginx-reload || exit 1
sudo -n "$BAKERY_SUDO" cert-info "$HOST"
