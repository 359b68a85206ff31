#!/usr/bin/env bash
# Install Stoplight Prism (pinned in tests/hetzner_fake/package-lock.json) for the Hetzner API
# contract check. Idempotent: returns at once when the installed tree matches the lock file.
# Uses $MUNERO_CACHE/npm as npm cache when MUNERO_CACHE is set and exists.
set -euo pipefail
cd "$(dirname "$0")/../../tests/hetzner_fake"

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.munero-lock-sha256
if [[ -x node_modules/.bin/prism && -f $stamp && "$(cat "$stamp")" == "$lock_sum" ]]; then
  echo "prism: already installed ($(sed -n 's/^  "version": "\(.*\)",$/\1/p' node_modules/@stoplight/prism-cli/package.json))"
  exit 0
fi

# Prism 5.14 needs Node.js >= 18.20 (5.16 would need 24). Use the machine's node when it is new
# enough, else Debian's packages.
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a==18&&b>=20)?0:1)'
}
if ! node_ok; then
  echo "prism: installing nodejs and npm from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi

npm_args=(ci --no-audit --no-fund --loglevel=error)
if [[ -n "${MUNERO_CACHE:-}" && -d "${MUNERO_CACHE}" ]]; then
  mkdir -p "$MUNERO_CACHE/npm"
  npm_args+=(--cache "$MUNERO_CACHE/npm" --prefer-offline)
fi
npm "${npm_args[@]}"
echo "$lock_sum" > "$stamp"
echo "prism: installed $(node_modules/.bin/prism --version)"
