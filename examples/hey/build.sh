#!/bin/sh
# Build the hey image from Debian's busybox-static: ./build.sh [TAG] (default acme/hey:dev).
set -eu
cd "$(dirname "$0")"
tag=${1:-acme/hey:dev}
busybox=$(command -v busybox) || { echo "install busybox-static" >&2; exit 1; }
cp "$busybox" busybox
trap 'rm -f busybox' EXIT
DOCKER_BUILDKIT=0 docker build -q -t "$tag" .
