#!/usr/bin/env bash
# Installs everything, then runs the whole test suite: unit and real-client tests, then the notebooks.
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
# Real clients the tests drive (skopeo): installed when this machine can.
missing=()
for tool in skopeo:skopeo; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
    || echo "could not install ${missing[*]}: the tests that need them will say so" >&2
fi
ruff check .
# notebooks/ko holds the Korean twins: their code cells are the English ones (tests/test_notebooks.py), so
# nbval runs the English notebooks only.
exec python -m pytest tests notebooks --ignore=notebooks/ko --nbval-lax --nbval-cell-timeout=300 --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
