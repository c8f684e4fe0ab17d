#!/bin/sh
# analytics prints, per app of LOGS ("app:inode:offset …"), what its access
# log gained since the position (ParseAnalytics reads it): "@app APP", then
# for a log rotated since the last read "@old INODE SIZE OFFSET N" and N
# bytes of the rotated file (.1), then — unless the rotated file has more
# than MAX bytes left — "@file INODE SIZE OFFSET N" and N bytes of the
# current file, then "@disk RELEASES REPO LOG IMAGES" (bytes; IMAGES, for a
# dockerized app, sums its images' sizes, layers they share counted once
# per image). Each data block is followed by a newline.
# Environment: BAKERY_ROOT, LOGS, MAX, LOGDIR, APPS (the apps' directory;
# empty means $BAKERY_ROOT/apps).
set -u
APPS=${APPS:-$BAKERY_ROOT/apps}
for spec in $LOGS; do
  app=${spec%%:*}; rest=${spec#*:}; ino=${rest%%:*}; off=${rest#*:}
  f=$LOGDIR/bakery-$app.access
  echo "@app $app"
  more=1
  if [ "$ino" != 0 ] && [ -f "$f.1" ] && [ "$(stat -c %i "$f.1")" = "$ino" ]; then
    sz=$(stat -c %s "$f.1")
    [ "$sz" -ge "$off" ] || off=$sz
    n=$((sz - off)); if [ "$n" -gt "$MAX" ]; then n=$MAX; more=0; fi
    echo "@old $ino $sz $off $n"
    tail -c +$((off + 1)) "$f.1" | head -c "$n"; echo
    off=0; ino=0
  fi
  if [ "$more" = 1 ] && [ -f "$f" ]; then
    # Inode and size become $1 and $2.
    # shellcheck disable=SC2046
    set -- $(stat -c '%i %s' "$f")
    if [ "$1" != "$ino" ] || [ "$2" -lt "$off" ]; then off=0; fi
    n=$(($2 - off)); if [ "$n" -gt "$MAX" ]; then n=$MAX; fi
    echo "@file $1 $2 $off $n"
    tail -c +$((off + 1)) "$f" | head -c "$n"; echo
  fi
  r=$(du -sb "$APPS/$app/releases" 2>/dev/null | cut -f1)
  g=$(du -sb "$APPS/$app/repo.git" 2>/dev/null | cut -f1)
  l=$(stat -c %s "$f" 2>/dev/null || echo 0)
  i=0
  if grep -qs '"dockerized": true' "$APPS/$app/state.json"; then
    ids=$(docker image ls -q "bakery/$app" 2>/dev/null | sort -u)
    if [ -n "$ids" ]; then
      # One argument per image id.
      # shellcheck disable=SC2086
      i=$(docker image inspect --format '{{.Size}}' $ids 2>/dev/null | awk '{s += $1} END {printf "%d", s}')
    fi
  fi
  echo "@disk ${r:-0} ${g:-0} ${l:-0} ${i:-0}"
done
