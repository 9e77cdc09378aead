#!/usr/bin/env bash
# Installs everything, then runs the whole test suite: unit and real-client tests, then the notebooks.
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
ruff check .
exec python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
