#!/usr/bin/env bash
# station/chromium.sh — print the path of a Chromium for the browser tests,
# installing Debian's chromium package when there is none.
#
# Exit 0 with the path on stdout; exit 3 when Chromium is not installed and
# cannot be (no apt-get, or not root): the tests then skip and say why.
set -euo pipefail
for c in "${MONITORME_CHROMIUM:-}" chromium chromium-browser google-chrome; do
  [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && { command -v "$c"; exit 0; }
done
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "chromium.sh: no Chromium, and no apt-get as root to install Debian's chromium" >&2
  exit 3
fi
echo "chromium.sh: installing Debian's chromium (about 100 MB, once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get install -y -q --no-install-recommends chromium >&2 || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; }; }; then
  echo "chromium.sh: apt-get could not install chromium" >&2
  exit 3
fi
command -v chromium
