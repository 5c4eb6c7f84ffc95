#!/usr/bin/env bash
# Issue, or renew, cloud ingest's TLS certificate from a private CA (made on first use).
#
#   deploy/cloud/ingest-certificate.sh DIR HOSTNAME [DAYS]
#
# DIR gets ca.crt/ca.key (keep ca.key offline once made; gateways trust ca.crt through
# their facility file's gateway.cloud.ca_file) and ingest.crt/ingest.key (cloud.yaml's
# tls.cert_file/key_file). Renewing is running it again, e.g. monthly from a systemd timer
# or cron: a new key and certificate replace the old ones (each by a rename, never half
# written) and ingest serves them on the next connection, with no restart. Its metric
# locowatch_ingest_tls_certificate_expiry_days says how long the served one has left.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 DIR HOSTNAME [DAYS]" >&2
  exit 2
fi
dir=$1
host=$2
days=${3:-90}
umask 077
mkdir -p "$dir"
if [[ ! -f "$dir/ca.key" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=locowatch ingest CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  chmod 0644 "$dir/ca.crt"
  echo "made the CA: $dir/ca.crt (give it to the gateways)"
fi
work=$(mktemp -d "$dir/.renew.XXXXXX")
trap 'rm -rf "$work"' EXIT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" \
  -keyout "$work/ingest.key" -out "$work/ingest.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host" >"$work/ext"
openssl x509 -req -in "$work/ingest.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -days "$days" -extfile "$work/ext" -out "$work/ingest.crt" 2>/dev/null
chmod 0644 "$work/ingest.crt"
chmod 0640 "$work/ingest.key"  # the group ingest runs as may read it
if [[ -e "$dir/ingest.key" ]]; then  # a renewal keeps the group the old key was given
  chgrp --reference="$dir/ingest.key" "$work/ingest.key"
fi
# The key first: until the certificate follows, ingest refuses the mismatched pair and
# keeps serving the old one.
mv -f "$work/ingest.key" "$dir/ingest.key"
mv -f "$work/ingest.crt" "$dir/ingest.crt"
openssl x509 -in "$dir/ingest.crt" -noout -subject -enddate
