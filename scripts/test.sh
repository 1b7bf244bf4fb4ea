#!/usr/bin/env bash
# Install everything, start the daemons the tests need, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/start-daemons.sh
# Tests never pull images from remote registries: they build theirs locally.
export KUBELING_DOCKER_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
