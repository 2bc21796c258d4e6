#!/usr/bin/env bash
# Make a Docker engine and the local base image available on a machine that has neither.
# Idempotent: installs Debian's docker.io when `dockerd` is missing, starts it when the socket
# does not answer, and builds the base image from Debian packages when it is not there
# (no container registry is reachable here, so nothing can be pulled).
#
#   bash .ci/docker-engine.sh [SETTINGS_FILE]
#
# With SETTINGS_FILE (`make docker-engine` passes local.mk), writes the make settings that make
# this base image and the host's CA bundle the defaults of later make calls.
set -euo pipefail

# Not BASE_IMAGE: make exports that, and this image is always the locally built one.
LOCAL_BASE_IMAGE=localhost/platform-base:bookworm
SETTINGS_FILE=${1:-}
SOCKET=/var/run/docker.sock
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

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

if ! docker image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker-engine: building $LOCAL_BASE_IMAGE from Debian bookworm (about a minute)"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - \
    | docker import - "$LOCAL_BASE_IMAGE" >/dev/null
fi

if [ -n "$SETTINGS_FILE" ]; then
  # One base for the runtime builder and the images: a venv-packed runtime links to the
  # builder's /usr/bin/python3.11, which the image then has too. Containers that run pip trust
  # the host's CAs (behind a TLS-intercepting proxy they must; elsewhere it changes nothing).
  {
    echo "# Written by \`make docker-engine\` (.ci/docker-engine.sh); git-ignored. Defaults of later make"
    echo "# calls on this machine; the command line and the environment win. Delete it to go back."
    echo "BASE_IMAGE ?= $LOCAL_BASE_IMAGE"
    echo "BUILDER_BASE_IMAGE ?= $LOCAL_BASE_IMAGE"
    if [ -f "$HOST_CA_BUNDLE" ]; then echo "EXTRA_CA_BUNDLE ?= $HOST_CA_BUNDLE"; fi
  } > "$SETTINGS_FILE.partial"
  mv "$SETTINGS_FILE.partial" "$SETTINGS_FILE"
  echo "docker-engine: wrote $SETTINGS_FILE (BASE_IMAGE and BUILDER_BASE_IMAGE = $LOCAL_BASE_IMAGE)"
fi
echo "docker-engine: ready ($(docker version --format '{{.Server.Version}}'), base image $LOCAL_BASE_IMAGE)"
