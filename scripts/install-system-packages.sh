#!/usr/bin/env bash
# Install the Debian packages hygge's SQL path and its tests need, only when missing.
#
# Why each one:
#   libodbc2, unixodbc  - the ODBC driver manager pyodbc and arrow-odbc link against (libodbc.so.2),
#                         plus isql/odbcinst for debugging
#   libltdl7            - needed by the libodbcinst bundled with mssql-python-odbc (Microsoft ODBC Driver 18)
#   odbc-postgresql     - psqlODBC: the driver the PostgreSQL home and the end-to-end tests use
#   postgresql          - initdb/pg_ctl for the throwaway server the SQL tests start
#   redis-server        - the Celery broker tests/dagster/test_celery.py starts (hygge's steps on dagster-celery workers)
#
#   azurite (npm)       - Azure Blob emulator the Delta store tests start (tests/stores/lakes.py); 3.37.0 or later,
#                         the first to honour List Blobs' startFrom, which delta-rs uses to find new commits
#
# Safe to run repeatedly: apt and npm are not touched when everything is present.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(libodbc2 unixodbc libltdl7 odbc-postgresql postgresql redis-server)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

AZURITE_VERSION=3.37.0
install_azurite() {
    local have
    have="$(azurite-blob --version 2>/dev/null || true)"
    if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$AZURITE_VERSION" "$have" | sort -V | head -n1)" = "$AZURITE_VERSION" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-system-packages: azurite $AZURITE_VERSION is missing and npm is not available; install Node.js and npm" >&2
        return 1
    fi
    echo "install-system-packages: installing azurite $AZURITE_VERSION (npm)"
    # Its package.json asks for Node 22; the blob service runs on Node 20 as well, so do not let npm refuse.
    npm install -g --no-fund --no-audit --engine-strict=false "azurite@$AZURITE_VERSION" >/dev/null
}
install_azurite

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-packages: all present (${packages[*]})"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
    exit 1
fi

run_as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        run_as_root=(sudo)
    else
        echo "install-system-packages: missing ${missing[*]}; run this script as root" >&2
        exit 1
    fi
fi

echo "install-system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -qq
"${run_as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
