#!/usr/bin/env bash
# Start dockerd when it is not answering (tests of the Docker runtime need it).
# Only a daemon this script starts is left running; nothing else is touched.
set -euo pipefail
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if command -v dockerd >/dev/null 2>&1; then
    echo "starting dockerd"
    mkdir -p /var/log
    nohup dockerd >/var/log/kubeling-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/kubeling-dockerd.log"; exit 1; }
  fi
fi
