# Sourced by the scripts that run Python tools: the project's virtual environment (.build-venv,
# kept between runs) with exactly the pinned packages they ask for.
#
#   venv_require schemathesis==4.32.5 …    installs any that is missing or at another version
venv=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.build-venv

venv_require() {
    local requirement name version missing=()
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    for requirement in "$@"; do
        name=${requirement%%==*} version=${requirement#*==}
        "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null ||
            missing+=("$requirement")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        "$venv/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
    fi
}
