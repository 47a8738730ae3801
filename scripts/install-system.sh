#!/usr/bin/env bash
# System packages the book needs on Debian/Ubuntu: Python's venv module, the Fashion-MNIST files,
# Node.js/npm (when missing) for the site's JavaScript packages, and Chromium with its driver for the
# real-browser test of the site.
# Idempotent and quick when everything is present. Uses sudo when not root.
set -euo pipefail

packages=(dataset-fashion-mnist chromium chromium-driver)
python3 -m venv --help >/dev/null 2>&1 || packages+=(python3-venv)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)  # npm ci installs the site's onnxruntime-web

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Not a Debian/Ubuntu system: install ${missing[*]} yourself." >&2
  echo "(Without dataset-fashion-mnist, cnnbook downloads Fashion-MNIST on first use.)" >&2
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
