#!/bin/sh
# Install Debian's own Chromium (for tests/test_browser.py), from the system's apt
# sources only. Nothing else is downloaded. Fast no-op when it is already installed.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n "$0" "$@"
    fi
    echo "install-browser.sh: needs root to apt-get install chromium" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser.sh: /usr/bin/chromium still missing after install" >&2
    exit 1
fi
/usr/bin/chromium --version
