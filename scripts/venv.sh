# Sourced by the set-up scripts: create ./.venv once and install hygge into it (editable) with the given extras.
ensure_venv() {
    local extras="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local spec="-e ."
    if [ "$extras" != "." ]; then spec="-e .[$extras]"; fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check $spec
}
