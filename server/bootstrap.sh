# Sourced by ./server/demo and ./tests/run: a virtual environment with mcpls and what it
# needs, created or updated only when pyproject.toml changed. Nothing outside the repo.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "mcpls needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    echo "python3 -m venv failed; on Debian/Ubuntu install python3-venv" >&2
    exit 1
  fi
fi
stamp="$venv/.mcpls-installed"
want="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$repo[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
