#!/usr/bin/env bash
# Installs everything, starts the sim lab with JupyterLab serving the notebooks, prints the URL.
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
labkit up --jupyter "$@"
url=$(labkit status --json | python -c 'import json,sys; d=json.load(sys.stdin); print(next(c["url"] for c in d["products"] if c["name"]=="jupyterlab"))')
echo
echo "Open the workshop: $url"
echo 'Use kubectl with the lab:  eval "$(.venv/bin/labkit env)"'
echo "Stop everything:           .venv/bin/labkit down"
