#!/usr/bin/env bash
# Install a locowatch edge gateway as systemd services (Debian or Ubuntu, as root):
#
#   sudo deploy/edge/install.sh --config depot.yaml --token gw.token [--gpu] [--no-start]
#
# Every step is safe to repeat; an upgrade or a changed facility file is the same command
# again:
#   1. the system user locowatch (no login shell, home /var/lib/locowatch);
#   2. a virtualenv /opt/locowatch/venv with locowatch from this checkout (the gpu extra
#      with --gpu; then the venv also sees an apt-installed TensorRT), models in
#      /opt/locowatch/models;
#   3. /etc/locowatch (root:locowatch 0750): the facility file as facility.yaml, the token
#      where the facility file's gateway.cloud.token_file says (0640), edge.env with the
#      log settings (kept when present); /var/lib/locowatch (locowatch 0750) for the data;
#   4. units generated from the facility file (`locowatch edge deploy systemd`) in
#      /etc/systemd/system; units of services the facility file no longer has are removed;
#   5. systemctl daemon-reload, enable locowatch-edge.target and (re)start it.
#
# --root DIR installs into DIR instead of / (an image being built, or a test): users and
# symlinks are made there and nothing is started.
set -euo pipefail

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
options:
  --config FILE    the facility file (required)
  --token FILE     install this gateway token where the facility file expects it
  --gpu            install the gpu extra (TensorRT engines through pycuda)
  --source DIR     the locowatch checkout to install (default: the one holding this script)
  --python PROG    Python >= 3.11 for the virtualenv (default: python3)
  --root DIR       install under DIR instead of /; implies --no-start
  --no-start       install and enable, but do not (re)start the services
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 2
}

config="" token="" gpu=0 start=1 root="" python="python3"
source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="${2:?--config needs a file}"; shift 2 ;;
    --token) token="${2:?--token needs a file}"; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --source) source_dir="${2:?--source needs a folder}"; shift 2 ;;
    --python) python="${2:?--python needs a program}"; shift 2 ;;
    --root) root="$(realpath -m "${2:?--root needs a folder}")"; start=0; shift 2 ;;
    --no-start) start=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$config" ] || die "--config FILE is required"
[ -f "$config" ] || die "no facility file $config"
[ -z "$token" ] || [ -f "$token" ] || die "no token file $token"
[ -f "$source_dir/pyproject.toml" ] || die "$source_dir is not a locowatch checkout"
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user and system folders)"
[ "$root" != "/" ] || root=""

user=locowatch
opt="$root/opt/locowatch"
venv="$opt/venv"
etc="$root/etc/locowatch"
state="$root/var/lib/locowatch"
unit_dir="$root/etc/systemd/system"

log() { echo "==> $*"; }

# The account lives in $root's own passwd files, so look it up there, not through NSS.
ensure_user() {
  local prefix=()
  if [ -n "$root" ]; then
    prefix=(--prefix "$root")
    install -d -m 0755 "$root/etc"
  fi
  if ! grep -q "^$user:" "$root/etc/passwd" 2>/dev/null; then
    log "creating system user $user"
    useradd "${prefix[@]}" --system --user-group --home-dir /var/lib/locowatch \
      --no-create-home --shell /usr/sbin/nologin "$user"
  fi
  uid="$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")"
  gid="$(awk -F: -v u="$user" '$1 == u { print $4 }' "$root/etc/passwd")"
}

ensure_venv() {
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python is older than Python 3.11"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    local flags=()
    # An apt-installed TensorRT (python3-libnvinfer) lives in the system's site-packages.
    [ "$gpu" -eq 0 ] || flags=(--system-site-packages)
    install -d -m 0755 "$opt"
    "$python" -m venv "${flags[@]}" "$venv"
  fi
  local extra=""
  [ "$gpu" -eq 0 ] || extra="[gpu]"
  log "installing locowatch$extra from $source_dir"
  "$venv/bin/python" -m pip install --quiet "$source_dir$extra"
  # Replace the models as a whole, so a model removed from the checkout goes too.
  rm -rf "$opt/models.new"
  cp -r "$source_dir/models" "$opt/models.new"
  rm -rf "$opt/models"
  mv "$opt/models.new" "$opt/models"
}

ensure_config() {
  install -d -o 0 -g "$gid" -m 0750 "$etc"
  install -d -o "$uid" -g "$gid" -m 0750 "$state" "$state/gateway"
  install -o 0 -g "$gid" -m 0640 "$config" "$etc/facility.yaml"
  if [ ! -f "$etc/edge.env" ]; then
    install -o 0 -g "$gid" -m 0640 /dev/null "$etc/edge.env"
    printf '%s\n' "# Log settings of every locowatch edge service (systemd EnvironmentFile)." \
      "LOCOWATCH_LOG_LEVEL=INFO" "LOCOWATCH_LOG_FORMAT=json" >"$etc/edge.env"
  fi
  if [ -n "$token" ]; then
    local target
    target="$root$(token_path)"
    log "installing the gateway token as $target"
    install -d -o 0 -g "$gid" -m 0750 "$(dirname "$target")"
    install -o 0 -g "$gid" -m 0640 "$token" "$target"
  fi
}

# Where the facility file, once installed, expects the token (relative to /etc/locowatch).
token_path() {
  "$venv/bin/python" - "$etc/facility.yaml" "$root" <<'EOF'
import sys
from pathlib import Path

from locowatch.facility import load_facility

config = load_facility(Path(sys.argv[1]))
if config.gateway is None:
    sys.exit("the facility file has no gateway section")
path = config.gateway.cloud.token_file
root = sys.argv[2]
# A relative token_file was resolved against the installed file, which is under $root.
inside = root and path.is_relative_to(root)
print(f"/{path.relative_to(root)}" if inside else path, end="")
EOF
}

ensure_units() {
  generated="$(mktemp -d)"
  trap 'rm -rf "$generated"' EXIT
  LOCOWATCH_MODELS="$opt/models" "$venv/bin/locowatch" edge deploy systemd \
    --config "$etc/facility.yaml" --out "$generated" 2>/dev/null
  install -d -m 0755 "$unit_dir"
  local unit name
  for unit in "$unit_dir"/locowatch-edge*; do
    [ -e "$unit" ] || continue
    name="$(basename "$unit")"
    if [ ! -e "$generated/$name" ]; then
      log "removing $name (no longer in the facility file)"
      [ "$start" -eq 0 ] || systemctl stop "$name" || true
      rm -f "$unit"
    fi
  done
  for unit in "$generated"/*; do
    install -m 0644 "$unit" "$unit_dir/$(basename "$unit")"
  done
  log "units in $unit_dir: $(cd "$generated" && echo *)"
}

enable_units() {
  if [ -n "$root" ]; then
    systemctl --root="$root" enable locowatch-edge.target
    return
  fi
  systemctl daemon-reload
  systemctl enable locowatch-edge.target
  if [ "$start" -eq 1 ]; then
    # restart, not start: an upgrade or a changed facility file takes effect at once
    # (every service is PartOf= the target).
    systemctl restart locowatch-edge.target
    log "started; check with: $venv/bin/locowatch edge health --config $etc/facility.yaml"
  fi
}

ensure_user
ensure_venv
ensure_config
ensure_units
enable_units
log "done"
