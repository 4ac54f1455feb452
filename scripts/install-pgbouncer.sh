#!/bin/sh
# Install Debian's PgBouncer (for tests/test_pgbouncer.py), from the system's apt sources
# only. The test starts its own pgbouncer on a free port; the packaged service is not
# used. Fast no-op when it is already installed.
set -eu

if [ -x /usr/sbin/pgbouncer ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n "$0" "$@"
    fi
    echo "install-pgbouncer.sh: needs root to apt-get install pgbouncer" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: the package must not start (or enable) its own pgbouncer service.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null

if [ ! -x /usr/sbin/pgbouncer ]; then
    echo "install-pgbouncer.sh: /usr/sbin/pgbouncer still missing after install" >&2
    exit 1
fi
/usr/sbin/pgbouncer --version
