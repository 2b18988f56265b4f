#!/usr/bin/env bash
# Make sure a PostgreSQL answers on 127.0.0.1:5432 for the storage tests (trust auth for the
# `postgres` role, database `test`). Uses the machine's server when there is one; installs and
# configures Debian's package on a machine without it. Idempotent and quick when all is well.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
can_login() { psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null 2>&1 && ready && can_login; then
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "ensure-postgres: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! ready; then
    echo "ensure-postgres: starting cluster $version/main" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi

if ! can_login; then
    # A fresh Debian cluster asks loopback clients for a password: the tests connect as
    # postgres without one, as on the development machines. Trust loopback only.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        echo "ensure-postgres: trusting loopback connections in $hba" >&2
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    su postgres -c "psql -Atc \"select 1 from pg_database where datname='test'\"" | grep -q 1 \
        || su postgres -c "createdb test"
fi

if ! can_login; then
    echo "ensure-postgres: PostgreSQL on 127.0.0.1:5432 still refuses postgres@test" >&2
    exit 1
fi
