#!/usr/bin/env bash
# Install gitlab-ci-local (and the Node 22 it needs) from the npm registry into an ignored folder,
# and print the folder whose bin/ to put first on PATH. Idempotent: a second run only checks.
#
#   bash .ci/gitlab-ci-local.sh [DIR]        (default DIR: .cache/gitlab-ci-local in the checkout)
#   PATH="$(bash .ci/gitlab-ci-local.sh)/node_modules/.bin:$PATH" gitlab-ci-local --list
#
# Needs npm (any Node; the machine's may be older than 22) and rsync (gitlab-ci-local copies
# trees with it). tests/test_gitlab_ci.py calls this.
set -euo pipefail
GITLAB_CI_LOCAL_VERSION=4.75.1
NODE_VERSION=22
dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/gitlab-ci-local}"
bin="$dir/node_modules/.bin"

command -v rsync >/dev/null || { echo "gitlab-ci-local needs rsync: apt-get install -y rsync" >&2; exit 1; }
if ! { [ -x "$bin/node" ] && [ -x "$bin/gitlab-ci-local" ] &&
       [ "$(PATH="$bin:$PATH" gitlab-ci-local --version 2>/dev/null)" = "$GITLAB_CI_LOCAL_VERSION" ]; }; then
  command -v npm >/dev/null || { echo "installing gitlab-ci-local needs npm (apt-get install -y npm)" >&2; exit 1; }
  mkdir -p "$dir"
  echo "== installing gitlab-ci-local $GITLAB_CI_LOCAL_VERSION and node $NODE_VERSION into $dir" >&2
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
    "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" "node@$NODE_VERSION" >&2
fi
# The npm "node" package puts its binary on node_modules/.bin; gitlab-ci-local runs with it.
major="$("$bin/node" --version | sed -E 's/^v([0-9]+).*/\1/')"
[ "$major" -ge 22 ] || { echo "gitlab-ci-local needs Node >= 22; $bin/node is $("$bin/node" --version)" >&2; exit 1; }
echo "$dir"
