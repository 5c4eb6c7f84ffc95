# The init container of every task: copy this task's config from S3 onto the task-local
# volume at /etc/locowatch, write the secret files it was given, hand it all to the app's
# user, and exit. The app container starts only after this one exited 0.
set -eu
dest=/etc/locowatch
aws s3 cp --recursive --only-show-errors "s3://$CONFIG_BUCKET/$CONFIG_PREFIX/" "$dest/"
mkdir -p "$dest/facilities"
for facility in $FACILITIES; do
  aws s3 cp --only-show-errors "s3://$CONFIG_BUCKET/facilities/$facility.yaml" "$dest/facilities/"
done
if [ -n "${TLS_KEY:-}" ]; then
  mkdir -p "$dest/tls"
  printf '%s\n' "$TLS_CERT" > "$dest/tls/ingest.crt"
  (umask 077 && printf '%s\n' "$TLS_KEY" > "$dest/tls/ingest.key")
fi
chown -R "$APP_UID" "$dest"
