#!/bin/sh
# Install Debian's `prometheus` package for its `promtool` (tests/test_workers.py lints the
# /metrics output with `promtool check metrics`), from the system's apt sources only.
# Fast no-op when it is already installed. The package's service is not started.
set -eu

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n "$0" "$@"
    fi
    echo "install-promtool.sh: needs root to apt-get install prometheus" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Only promtool is wanted: keep the Prometheus server from starting on install.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=true
fi
trap 'if [ "$created_policy" = true ]; then rm -f "$policy"; fi' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus >/dev/null

if ! command -v promtool >/dev/null 2>&1; then
    echo "install-promtool.sh: promtool still missing after install" >&2
    exit 1
fi
promtool --version | head -1
