#!/usr/bin/env bash
# CI, once: the notebooks against the newest releases of the notebook toolchain (scripts/constraints.txt pins
# the tested ones), in a venv of their own and a fresh lab, so that a release that breaks them is seen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$ROOT/.venv-latest"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$ROOT"
tools=$(grep -Eo '^[A-Za-z0-9_.-]+' "$ROOT/scripts/constraints.txt")
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --upgrade $tools
echo "notebook toolchain (newest):"
"$venv/bin/python" -m pip list --format=freeze 2>/dev/null | grep -iE "^($(echo $tools | tr ' ' '|'))==" | tr '\n' ' '
echo
home=$(mktemp -d)
trap 'LABKIT_HOME="$home" "$venv/bin/labkit" down >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
export LABKIT_HOME="$home" PIP_NO_INDEX=1 PIP_FIND_LINKS="$ROOT/.wheelhouse"
PATH="$venv/bin:$PATH" "$venv/bin/labkit" notebooks run 00 01 --out "$ROOT/out/notebooks-latest"
