#!/usr/bin/env bash
# Remove the client's data from this stack and prove it is gone.
#
#   ./wipe_client_data.sh [--yes]
#
# Stops the stack, removes the client_data volume (the client's SQLite) and the app_state volume
# (chat history), starts the stack again, checks that the backend reports no data and prints a
# receipt, also saved under receipts/ (or $RECEIPT_DIR). Models (ollama_models) and certificates
# (caddy_data) stay.
#
# Runs `docker compose` in this directory. MUNERO_COMPOSE_ARGS adds arguments to every compose call
# (e.g. "-p NAME -f docker-compose.yml -f other.yml --env-file FILE" for a non-default setup).
# Exit codes: 0 wiped and verified, 1 failed (the receipt says where), 2 usage.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
read -r -a extra <<<"${MUNERO_COMPOSE_ARGS:-}"
dc() { docker compose "${extra[@]}" "$@"; }

assume_yes=0
case ${1:-} in
    --yes | -y) assume_yes=1 ;;
    "") ;;
    *) echo "usage: $0 [--yes]" >&2; exit 2 ;;
esac

project=$(dc config 2>/dev/null | sed -n 's/^name: //p' | head -n1)
[[ -n $project ]] || { echo "error: cannot determine the compose project" >&2; exit 1; }
volumes=("${project}_client_data" "${project}_app_state")

if [[ $assume_yes != 1 ]]; then
    if [[ ! -t 0 ]]; then
        echo "error: refusing to wipe without --yes when not interactive" >&2
        exit 2
    fi
    read -r -p "Wipe client data of project '$project' (${volumes[*]})? Type 'wipe': " answer
    [[ $answer == wipe ]] || { echo "aborted"; exit 2; }
fi

receipt_dir=${RECEIPT_DIR:-$here/receipts}
mkdir -p "$receipt_dir"
chmod 700 "$receipt_dir"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
receipt="$receipt_dir/wipe-$(date -u +%Y%m%dT%H%M%SZ).txt"
report=()
note() { report+=("$*"); printf '%s\n' "$*"; }

note "munero wipe receipt"
note "project:   $project"
note "host:      $(hostname)"
note "started:   $started"

for v in "${volumes[@]}"; do
    if mp=$(docker volume inspect -f '{{.Mountpoint}}' "$v" 2>/dev/null); then
        size=$(du -sb "$mp" 2>/dev/null | cut -f1 || echo "?")
        files=$(find "$mp" -type f 2>/dev/null | wc -l || echo "?")
        note "volume:    $v  ($size bytes in $files files)"
        if [[ -f $mp/munero.sqlite ]]; then
            note "           munero.sqlite sha256 $(sha256sum "$mp/munero.sqlite" | cut -d' ' -f1)"
        fi
    else
        note "volume:    $v  (not present)"
    fi
done

echo "stopping the stack" >&2
dc down --remove-orphans >/dev/null 2>&1
for v in "${volumes[@]}"; do
    if docker volume inspect "$v" >/dev/null 2>&1; then
        docker volume rm "$v" >/dev/null
        note "removed:   $v"
    fi
done
for v in "${volumes[@]}"; do
    if docker volume inspect "$v" >/dev/null 2>&1; then
        note "FAILED:    $v still exists"
        printf '%s\n' "${report[@]}" >"$receipt"
        exit 1
    fi
done

echo "starting the stack again" >&2
dc up -d --no-build >/dev/null 2>&1 || dc up -d >/dev/null

# Verify from inside the backend container: /data is empty and the API says no data is loaded.
verify='
import json, os, sys, time, urllib.request, urllib.error
left = [n for n in os.listdir("/data") if not n.startswith(".")] if os.path.isdir("/data") else []
def get(path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000" + path, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
deadline = time.time() + 90
while True:
    try:
        status, body = get("/api/dashboard/test")
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit("backend did not answer: %s" % e)
        time.sleep(1)
print("data files left: %d; /api/dashboard/test -> %d %s" % (len(left), status, body[:160]))
sys.exit(0 if not left and status == 503 else 1)
'
result=1
for _ in $(seq 1 30); do
    if out=$(dc exec -T backend python3 -c "$verify" 2>&1); then
        result=0
        break
    fi
    # The check ran and found data: no point in retrying.
    [[ $out == *"data files left"* ]] && break
    # The container may still be starting: retry while exec itself fails.
    sleep 2
done
note "verify:    ${out:-no answer from the backend}"
note "finished:  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [[ $result == 0 ]]; then
    note "result:    WIPED - client data and chat history removed, backend reports no data"
else
    note "result:    FAILED - see verify line"
fi
printf '%s\n' "${report[@]}" >"$receipt"
chmod 600 "$receipt"
echo "receipt saved to $receipt" >&2
exit "$result"
