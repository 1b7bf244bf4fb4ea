#!/usr/bin/env bash
# Install kubeling and everything it needs on a Debian machine, idempotently:
# system packages (when missing), a virtualenv in .venv, the core and every plugin.
# Run as root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

# Debian packages the project uses: docker.io (pods run in real containers), iptables and
# iproute2 (service proxy, test network namespaces), conntrack, busybox-static (test images
# built locally), etcd-server (the etcd storage backend), systemd-container (the rkt-style
# runtime), python3-venv (the virtualenv).
PACKAGES="docker.io iptables iproute2 conntrack busybox-static etcd-server etcd-client systemd-container python3-venv git"
missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "installing system packages:$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=70.1" wheel 2>&1 | grep -v -i warning || true
# The core (with its test extras), then every plugin distribution under plugins/.
args=(-e ".[test]")
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && args+=(-e "$plugin")
done
.venv/bin/python -m pip install -q "${args[@]}" 2>&1 | grep -v -i -E "warning|location .* is ignored" || true
echo "kubeling installed: $(.venv/bin/kubeling --version)"
