#!/usr/bin/env bash
# Copy a client's SQLite database into the stack's client_data volume, atomically.
#
#   ./load_client_data.sh /path/to/client.sqlite
#
# The backend mounts client_data read-only, so the copy is made by a short-lived container of the
# backend image (already on the host, no network): the file is checked (`PRAGMA quick_check`),
# switched to rollback-journal mode (a WAL database cannot be opened on a read-only mount),
# written under a temporary name and renamed to munero.sqlite, so the backend never sees half a
# file. A running backend is restarted afterwards to pick up the new file.
#
# Environment: COMPOSE_PROJECT_NAME (default from .env, else munero), BACKEND_IMAGE (default from
# .env, else munero/backend:local).
set -euo pipefail

usage() { echo "usage: $0 CLIENT.sqlite" >&2; exit 2; }
[[ $# == 1 ]] || usage
src=$1
[[ -f $src ]] || { echo "error: no such file: $src" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
env_value() {
    # env_value NAME DEFAULT: from the environment, else from .env beside this script, else DEFAULT.
    local name=$1 default=$2 v=${!1:-}
    if [[ -z $v && -f $here/.env ]]; then
        v=$(sed -n "s/^${name}=//p" "$here/.env" | tail -n1)
        v=${v%\"}; v=${v#\"}; v=${v%\'}; v=${v#\'}
    fi
    printf '%s\n' "${v:-$default}"
}
project=$(env_value COMPOSE_PROJECT_NAME munero)
image=$(env_value BACKEND_IMAGE munero/backend:local)
volume="${project}_client_data"

docker image inspect "$image" >/dev/null 2>&1 ||
    { echo "error: image $image not found; build the stack first (docker compose build)" >&2; exit 1; }
docker volume inspect "$volume" >/dev/null 2>&1 || docker volume create \
    --label "com.docker.compose.project=$project" --label com.docker.compose.volume=client_data \
    --label com.docker.compose.version="$(docker compose version --short)" "$volume" >/dev/null

src_dir=$(cd "$(dirname "$src")" && pwd)
src_name=$(basename "$src")
bytes=$(stat -c %s "$src")
sha=$(sha256sum "$src" | cut -d' ' -f1)
echo "loading $src ($bytes bytes, sha256 $sha) into volume $volume"

docker run --rm --network none --user 0 --entrypoint python3 \
    -v "$volume:/data" -v "$src_dir:/in:ro" -e SRC="/in/$src_name" "$image" -c '
import os, shutil, sqlite3, sys
src, tmp, dst = os.environ["SRC"], "/data/.munero.sqlite.loading", "/data/munero.sqlite"
shutil.copyfile(src, tmp)
try:
    con = sqlite3.connect(tmp)
    try:
        result = con.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise ValueError("integrity check failed: " + str(result)[:200])
        mode = con.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        tables = con.execute("SELECT count(*) FROM sqlite_master WHERE type=\"table\"").fetchone()[0]
        if tables == 0:
            raise ValueError("the database has no tables")
    finally:
        con.close()
except (sqlite3.DatabaseError, ValueError) as e:
    os.remove(tmp)
    sys.exit("error: not loaded, the file is not a usable SQLite database (%s); the volume is unchanged" % e)
for leftover in (dst + "-wal", dst + "-shm", dst + "-journal"):
    if os.path.exists(leftover):
        os.remove(leftover)
os.chmod(tmp, 0o444)
with open(tmp, "rb") as f:
    os.fsync(f.fileno())
os.replace(tmp, dst)
fd = os.open("/data", os.O_RDONLY)
os.fsync(fd)
os.close(fd)
print(f"ok: {tables} tables, journal_mode={mode}")
'

backend=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter label=com.docker.compose.service=backend)
if [[ -n $backend ]]; then
    echo "restarting the backend to open the new database"
    xargs docker restart <<<"$backend" >/dev/null
fi
echo "done"
