#!/usr/bin/env bash
# Make a Docker engine and the local base image available on a machine that has neither.
# Idempotent: installs Debian's docker.io when `dockerd` is missing, starts it when the socket
# does not answer, and builds the base image from Debian packages when it is not there
# (no container registry is reachable here, so nothing can be pulled).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/platform-base:bookworm}
SOCKET=/var/run/docker.sock

have() { command -v "$1" >/dev/null 2>&1; }

if ! have dockerd || ! have mmdebstrap; then
  echo "docker-engine: installing docker.io and mmdebstrap from Debian"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io mmdebstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "docker-engine: dockerd did not answer on $SOCKET" >&2; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker-engine: building $BASE_IMAGE from Debian bookworm (about a minute)"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
    | docker import - "$BASE_IMAGE" >/dev/null
fi
echo "docker-engine: ready ($(docker version --format '{{.Server.Version}}'), base image $BASE_IMAGE)"
