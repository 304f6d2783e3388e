#!/usr/bin/env bash
# Installs Debian's kcat (librdkafka), the independent client of the interop
# tests, unless it is already there.
set -euo pipefail
command -v kcat >/dev/null && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat >/dev/null
kcat -V | head -1
