# Sourced by scripts/quickstart and scripts/test: make sure .venv exists,
# runs Python >= 3.11, and has asimap installed (editable) plus any extra
# requirement files given as arguments.
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=.venv

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "asimap needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)." >&2
        exit 1
    fi
    echo "==> creating $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "Could not create a virtualenv; on Debian: apt-get install python3-venv" >&2
        exit 1
    fi
fi

# Reinstall only when an input is newer than the last install or was not
# part of it, so repeated runs start at once.  The stamp lists the inputs
# installed so far, one a line.
stamp="$VENV/.asimap-installed"
inputs=(pyproject.toml "$@")
needs_install=0
for input in "${inputs[@]}"; do
    if [ ! -f "$stamp" ] || [ "$input" -nt "$stamp" ] || ! grep -qxF "$input" "$stamp"; then
        needs_install=1
    fi
done
if [ "$needs_install" = 1 ]; then
    echo "==> installing asimap into $VENV"
    requirements=()
    for req in "$@"; do requirements+=(-r "$req"); done
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e . "${requirements[@]}"
    { [ -f "$stamp" ] && cat "$stamp"; printf '%s\n' "${inputs[@]}"; } | sort -u > "$stamp.new"
    mv "$stamp.new" "$stamp"
fi
