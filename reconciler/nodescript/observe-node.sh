#!/bin/sh
# observe-node prints one key=value per line about the node
# (ParseNodeObservation reads it). It only reads.
# Environment: BAKERY_ROOT.
set -u
echo ready=bakery-ready
echo "kernel=$(uname -sr)"
# shellcheck source=/dev/null
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-${NAME:-}}"; fi
for t in git systemctl nginx certbot docker curl zstd; do
  if command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ]; then echo "tool=$t"; fi
done
root=$BAKERY_ROOT
if [ -d "$root" ]; then
  echo "bakery_bytes=$(du -sb "$root" 2>/dev/null | cut -f1)"
  df -PB1 "$root" | awk 'NR==2 {print "fs_bytes=" $2; print "free_bytes=" $4}'
else
  echo bakery_bytes=0
  df -PB1 / | awk 'NR==2 {print "fs_bytes=" $2; print "free_bytes=" $4}'
fi
