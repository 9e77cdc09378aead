# Sourced by the two entry scripts: makes .venv with labkit and its test tools installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "labkit needs Python 3.11 or newer (found $("$PY" --version 2>&1))" >&2; exit 1; }
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PY" -m venv "$ROOT/.venv"
fi
stamp="$ROOT/.venv/.labkit-installed"
constraints="$ROOT/scripts/constraints.txt"  # the notebook toolchain versions the notebooks are tested with
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$constraints" -nt "$stamp" ]; then
  "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install --quiet -c "$constraints" -e "$ROOT[dev]"
  touch "$stamp"
fi
# Wheels for the shop images' `pip install` (the sim builder installs from here, never from an index).
wheels="$ROOT/.wheelhouse"
# (and pytest: the shop pipeline's test job installs apps/requirements-test.txt from here in the sim)
if [ ! -f "$wheels/.complete" ] || [ "$ROOT/apps/catalog/requirements.txt" -nt "$wheels/.complete" ] \
   || [ "$ROOT/apps/requirements-test.txt" -nt "$wheels/.complete" ]; then
  "$ROOT/.venv/bin/python" -m pip download --quiet --only-binary=:all: --dest "$wheels" \
    -r "$ROOT/apps/requirements-test.txt"
  touch "$wheels/.complete"
fi
export PATH="$ROOT/.venv/bin:$PATH"
