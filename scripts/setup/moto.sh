#!/usr/bin/env bash
# Install moto's server (the EC2 emulator of the AWS provider tests) into a venv, pinned by
# tests/moto/requirements.txt. Idempotent: returns at once when the venv matches the pin. Prints
# the path of moto_server as its last line. Uses $MUNERO_CACHE/pip as pip cache when MUNERO_CACHE
# is set. Needs python3 with venv (installed from Debian when missing) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/../../tests/moto"

venv=${MUNERO_MOTO_VENV:-$PWD/.venv}
req_sum=$(sha256sum requirements.txt | cut -d' ' -f1)
stamp=$venv/.munero-req-sha256
if [[ -x $venv/bin/moto_server && -f $stamp && "$(cat "$stamp")" == "$req_sum" ]]; then
  echo "moto: already installed" >&2
  echo "$venv/bin/moto_server"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "moto: installing python3-venv from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv >/dev/null
fi

rm -rf "$venv"
python3 -m venv "$venv"
pip_args=(install --quiet --disable-pip-version-check -r requirements.txt)
if [[ -n "${MUNERO_CACHE:-}" ]]; then
  mkdir -p "$MUNERO_CACHE/pip"
  pip_args+=(--cache-dir "$MUNERO_CACHE/pip")
fi
"$venv/bin/pip" "${pip_args[@]}" >&2
echo "$req_sum" > "$stamp"
echo "moto: installed $("$venv/bin/pip" show moto | sed -n 's/^Version: //p')" >&2
echo "$venv/bin/moto_server"
