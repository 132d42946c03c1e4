# Sourced by the scripts that run Python tools: the project's virtual environment (.build-venv,
# kept between runs) with the packages they ask for, at the versions scripts/python-packages.txt
# pins for them and for everything they depend on, so that a new release of a dependency cannot
# change a run.
#
#   venv_require schemathesis aiosmtpd …    installs any that is missing or at another version
venv=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.build-venv
venv_packages=$(dirname "$venv")/scripts/python-packages.txt

venv_require() {
    local name version missing=()
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    for name in "$@"; do
        version=$(grep -i -m1 "^$name==" "$venv_packages" | cut -d= -f3)
        if [ -z "$version" ]; then
            echo "venv: $name is not pinned in $venv_packages" >&2
            return 1
        fi
        "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null ||
            missing+=("$name==$version")
    done
    local stamp=$venv/.python-packages
    if ! cmp -s "$venv_packages" "$stamp"; then
        # The pins changed since the last install (or none was made): all of them, dependencies
        # at their pinned versions too.
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$venv_packages"
        cp "$venv_packages" "$stamp"
    elif [ ${#missing[@]} -gt 0 ]; then
        "$venv/bin/pip" install -q --disable-pip-version-check -c "$venv_packages" "${missing[@]}"
    fi
}
