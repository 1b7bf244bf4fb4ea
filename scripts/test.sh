#!/usr/bin/env bash
# Install everything, start the daemons the tests need, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/start-daemons.sh
exec .venv/bin/python -m pytest "$@"
