#!/usr/bin/env bash
# Start the Hetzner API fake behind Prism (contract check) for a person at a terminal.
# Prints the JSON line of launch.py and, on stderr, the HCLOUD_ENDPOINT to use; Ctrl-C stops both.
# Without the spec beside the repo it runs the fake alone and says "contract check skipped: ...".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ ! -x "$here/node_modules/.bin/prism" ]]; then
  bash "$here/../../scripts/setup/prism.sh"
fi
exec python3 "$here/launch.py" --prism "$@"
