#!/bin/sh
# nginx-remove deletes the app's nginx site and reloads nginx if there was one.
# Environment: BAKERY_SUDO, APP.
set -u
if [ "$(sudo -n "$BAKERY_SUDO" nginx-site-remove "$APP")" = removed ]; then sudo -n "$BAKERY_SUDO" nginx-reload; fi
