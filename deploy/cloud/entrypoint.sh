#!/bin/sh
# Passwords come as files (compose secrets, mounted files), never as values in the compose
# file or the image: PGPASSWORD_FILE names the file, and libpq gets its content as
# PGPASSWORD, for a --db / LOCOWATCH_DB URL without a password in it.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD="$(cat "$PGPASSWORD_FILE")"
  export PGPASSWORD
  unset PGPASSWORD_FILE
fi
exec "$@"
