#!/usr/bin/env bash
# Install the Debian packages hygge's SQL path and its tests need, only when missing.
#
# Why each one:
#   libodbc2, unixodbc  - the ODBC driver manager pyodbc and arrow-odbc link against (libodbc.so.2),
#                         plus isql/odbcinst for debugging
#   libltdl7            - needed by the libodbcinst bundled with mssql-python-odbc (Microsoft ODBC Driver 18)
#   odbc-postgresql     - psqlODBC: the driver the PostgreSQL home and the end-to-end tests use
#   postgresql          - initdb/pg_ctl for the throwaway server the SQL tests start
#
# Safe to run repeatedly: apt is not touched when everything is present.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(libodbc2 unixodbc libltdl7 odbc-postgresql postgresql)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

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
