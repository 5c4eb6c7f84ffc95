#!/bin/sh
# Backups of the compose stack's database, in the format `locowatch db backup` writes
# (pg_dump custom format; restore with `locowatch db restore FILE --db URL`, or the steps
# in README.md). It runs in the compose `backup` service on the database's own image,
# because pg_dump must be at least as new as the server.
#
#   backup.sh nightly    every day at BACKUP_AT (UTC, HH:MM), for ever
#   backup.sh once       one backup now
#   backup.sh check      the health check: a dump of the last 26 h, or started less than
#                        26 h ago (so a night whose backup failed turns the service unhealthy)
#
# Connection from libpq's PG* variables; the password from the file PGPASSWORD_FILE
# names. Dumps go to BACKUP_DIR as DATABASE-YYYYMMDDTHHMMSSZ.dump, written under a
# temporary name and renamed when complete; the newest BACKUP_KEEP stay.
set -eu

dir=${BACKUP_DIR:-/backups}
keep=${BACKUP_KEEP:-14}
at=${BACKUP_AT:-02:30}
db=${PGDATABASE:-locowatch}
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD=$(cat "$PGPASSWORD_FILE")
  export PGPASSWORD
fi

backup_once() {
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  final="$dir/$db-$stamp.dump"
  partial="$dir/.$db-$stamp.dump.partial"
  umask 077
  if ! pg_dump --format=custom --file "$partial" --dbname "$db"; then
    rm -f "$partial"
    echo "backup of $db failed" >&2
    return 1
  fi
  sync
  mv "$partial" "$final"
  echo "backup of $db: $final ($(wc -c <"$final") bytes)"
  count=0
  for dump in "$dir/$db"-*.dump; do
    [ -e "$dump" ] && count=$((count + 1))
  done
  for dump in "$dir/$db"-*.dump; do  # the glob sorts by name, so oldest first
    [ "$count" -gt "$keep" ] || break
    rm -f "$dump"
    echo "old backup removed: $dump"
    count=$((count - 1))
  done
}

seconds_until() {  # seconds from now until the next HH:MM UTC
  hours=${1%%:*}
  minutes=${1##*:}
  target=$((${hours#0} * 3600 + ${minutes#0} * 60))  # "02" -> 2: no octal
  now=$(($(date -u +%s) % 86400))
  wait=$(((target - now + 86400) % 86400))
  [ "$wait" -gt 0 ] || wait=86400
  echo "$wait"
}

started=/tmp/locowatch-backup.started
case "${1:-nightly}" in
  once) backup_once ;;
  check)
    recent=$(find "$dir" "$started" -maxdepth 1 -mmin -1560 \
      \( -name "$db-*.dump" -o -name "${started##*/}" \) 2>/dev/null | head -n 1)
    [ -n "$recent" ]
    ;;
  nightly)
    touch "$started"
    echo "backups of $db to $dir daily at $at UTC, keeping $keep"
    while true; do
      sleep "$(seconds_until "$at")"
      backup_once || true  # logged; tomorrow's runs anyway
    done
    ;;
  *)
    echo "usage: $0 [nightly|once|check]" >&2
    exit 2
    ;;
esac
