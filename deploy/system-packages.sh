#!/usr/bin/env bash
# Debian packages the project needs beyond Python wheels: ffmpeg (the twin's H.264 video
# files and RTSP feeds), GStreamer's RTSP server with Debian's Python bindings (the twin's
# RTSP streams), EGL and Mesa's software rasterizer (the twin's OpenGL canvas, headless,
# no GPU), DejaVu fonts (number plates, Cyrillic included), openssl (test TLS
# certificates for cloud ingest), python3-venv (Debian leaves `python3 -m venv` out of
# python3 itself, and the Makefile's first step makes a virtualenv).
# PostgreSQL and TimescaleDB are installed by `locowatch db up` itself.
# `system-packages.sh test` adds what only the tests need: Chromium and its chromedriver
# for the dashboard's browser tests (Debian's builds: no browser download at test time),
# and the Mosquitto MQTT broker the plant-systems tests publish to.
# Idempotent: installs only what is missing; uses sudo when not root.
set -euo pipefail

packages=(
  ffmpeg fonts-dejavu-core openssl python3-venv
  python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  libegl1 libegl-mesa0 libgl1-mesa-dri
)
if [ "${1:-}" = "test" ]; then
  packages+=(chromium chromium-driver mosquitto)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "missing Debian packages: ${missing[*]}; install them as root" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
