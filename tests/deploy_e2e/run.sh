#!/usr/bin/env bash
# `munero-infra deploy` end to end on a real Docker engine: this machine plays the trial's host.
# A private OpenSSH sshd on 127.0.0.1 (own host key, root login by key only) is registered with
# `create --provider ssh`; deploy then uploads the data, the stack and the build contexts over the
# pinned connection, builds backend/frontend from this checkout on the registry-free test bases,
# brings the stack up (Ollama API stub), loads the data, pulls the model through the stub, waits
# healthy, smokes https://127.0.0.1/ with Basic Auth (Caddy tls internal) and runs the exposure
# probe. Then smoke, wipe (receipt, no data left), deploy again (data back), destroy (nothing left).
#
# Needs: a running engine (scripts/setup/docker.sh), the munero-test/* images
# (scripts/setup/base-images.sh), sshd (scripts/setup/sshd.sh), the built binary (MUNERO_BIN, else
# $CARGO_TARGET_DIR/debug/munero-infra, else target/debug/munero-infra), python3, curl, ss.
# Caddy is published on 127.0.0.1:80 and 127.0.0.1:443 (the trial's public URL has no port), so
# both must be free. Prints `N passed, M failed`; exits non-zero on any failure. Always removes its
# compose project (containers, networks, volumes), its sshd and its temp dir, pass or fail.
#
# Environment: DEPLOY_E2E_ROWS (3000 sample rows), DEPLOY_E2E_KEEP=1 leaves everything up.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

BIN=${MUNERO_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/munero-infra}
ROWS=${DEPLOY_E2E_ROWS:-3000}
CADDY_VERSION=${CADDY_VERSION:-2.10.2}
MODEL=qwen2.5-coder:1.5b          # not among the stub's preset models: present only if deploy pulled it
T=e2e
PROJECT="munero-deploye2e-$(date +%s)-$$"
WORK=$(mktemp -d /tmp/munero-deploye2e.XXXXXX)
chmod 700 "$WORK"
STATE=$WORK/state
REMOTE=$WORK/host/munero          # the trial's --remote-dir on the "host" (this machine)
OUT=$WORK/out                     # every command's output, checked for the password at the end
mkdir -p "$STATE" "$WORK/host" "$OUT"
export MUNERO_STATE_DIR=$STATE CI=${CI:-true}
export MUNERO_HEALTH_TIMEOUT=${MUNERO_HEALTH_TIMEOUT:-180}
SSHD_PID=
declare -A OLD_IMAGE=()
for img in munero-test/backend:deploy-e2e munero-test/frontend:deploy-e2e; do
    OLD_IMAGE[$img]=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
done

CHECKS_PREFIX=deploy-e2e
# shellcheck source=SCRIPTDIR/../lib/checks.sh
source "$ROOT/tests/lib/checks.sh"

cli() {
    # cli LABEL ARGS...: runs the binary with stdin closed, output kept in $OUT/LABEL.log; on
    # failure prints the last lines.
    local label=$1
    shift
    if "$BIN" "$@" </dev/null >"$OUT/$label.log" 2>&1; then
        return 0
    else
        local rc=$?
        echo "munero-infra $* exited $rc; last lines:"
        tail -n 40 "$OUT/$label.log"
        return "$rc"
    fi
}

dc() {
    # The stack on the host, as deploy left it (its .env carries COMPOSE_PROJECT_NAME).
    (cd "$REMOTE/deploy" && docker compose "$@")
}

cleanup() {
    local rc=$?
    if [[ ${DEPLOY_E2E_KEEP:-0} == 1 ]]; then
        log "DEPLOY_E2E_KEEP=1: leaving project $PROJECT, sshd pid $SSHD_PID and $WORK in place"
        return
    fi
    if ((failed > 0)) || ((rc != 0)); then
        if [[ -f $REMOTE/deploy/docker-compose.yml ]]; then
            log "state at failure:"
            dc ps -a 2>&1 | sed 's/^/    /' || true
            dc logs --no-color --tail 20 2>&1 | sed 's/^/    /' || true
        fi
    fi
    if [[ -f $REMOTE/deploy/docker-compose.yml ]]; then
        dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    fi
    # Whatever is left of the project even without its compose file (containers, volumes, networks).
    local ids
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
    [[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1 || true
    ids=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
    [[ -n $ids ]] && docker volume rm -f $ids >/dev/null 2>&1 || true
    ids=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
    [[ -n $ids ]] && docker network rm $ids >/dev/null 2>&1 || true
    # A rebuild moves the tags; drop the images they pointed at before, so reruns do not pile up.
    local img id
    for img in "${!OLD_IMAGE[@]}"; do
        id=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)
        [[ -n ${OLD_IMAGE[$img]} && ${OLD_IMAGE[$img]} != "$id" ]] && docker rmi "${OLD_IMAGE[$img]}" >/dev/null 2>&1 || true
    done
    if [[ -n $SSHD_PID ]]; then
        kill "$SSHD_PID" 2>/dev/null || true
        [[ -n ${HOOK_PID:-} ]] && kill "$HOOK_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- preconditions --------------------------------------------------------------------------
[[ -x $BIN ]] || { log "no binary at $BIN (cargo build, or set MUNERO_BIN)"; exit 1; }
for img in munero-test/python:3.13 munero-test/node:20 "munero-test/caddy:$CADDY_VERSION" munero-test/ollama-stub:latest; do
    docker image inspect "$img" >/dev/null 2>&1 || { log "image $img missing: run scripts/setup/base-images.sh"; exit 1; }
done
for port in 80 443; do
    if [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
        log "port $port is taken on this machine; the trial's public URL needs 127.0.0.1:80 and :443"
        ss -Hltnp "sport = :$port" | sed 's/^/    /'
        exit 1
    fi
done

# --- the "host": a private sshd on 127.0.0.1, root by key only --------------------------------
SSHD_DIR=$WORK/sshd
mkdir -p "$SSHD_DIR" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C e2e-host -f "$SSHD_DIR/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C e2e-operator -f "$SSHD_DIR/operator_ed25519"
cp "$SSHD_DIR/operator_ed25519.pub" "$SSHD_DIR/authorized_keys"
SFTP=/usr/lib/openssh/sftp-server
[[ -x $SFTP ]] || SFTP=/usr/libexec/openssh/sftp-server
SSH_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$SSHD_DIR/sshd_config" <<CONF
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
AuthorizedKeysFile $SSHD_DIR/authorized_keys
PidFile $SSHD_DIR/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 64
MaxSessions 64
LogLevel ERROR
Subsystem sftp $SFTP
CONF
/usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config" -p "$SSH_PORT" </dev/null >/dev/null 2>"$WORK/sshd.log" &
SSHD_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && break
    sleep 0.1
done
log "sshd (pid $SSHD_PID) on 127.0.0.1:$SSH_PORT; project $PROJECT; remote dir $REMOTE"

# --- inputs: a small dataset and the env with the test images --------------------------------
python3 backend/scripts/make_sample_db.py --rows "$ROWS" --seed 7 --end 2025-12-31 --out "$WORK/client.sqlite" >/dev/null
cat >"$WORK/test.env" <<ENV
# deploy e2e: registry-free test images, caddy on loopback 80/443, its own compose project.
COMPOSE_PROJECT_NAME=$PROJECT
OLLAMA_IMAGE=munero-test/ollama-stub:latest
CADDY_IMAGE=munero-test/caddy:$CADDY_VERSION
BACKEND_BASE_IMAGE=munero-test/python:3.13
FRONTEND_BASE_IMAGE=munero-test/node:20
BACKEND_IMAGE=munero-test/backend:deploy-e2e
FRONTEND_IMAGE=munero-test/frontend:deploy-e2e
CADDY_HTTP_PUBLISH=127.0.0.1:80
CADDY_HTTPS_PUBLISH=127.0.0.1:443
OLLAMA_MODEL=$MODEL
ENV

# --- helpers over the deployed stack ----------------------------------------------------------
password() { sed -n 's/^password = "\(.*\)"$/\1/p' "$STATE/trials/$T/basic-auth.toml"; }
auth_user() { sed -n 's/^user = "\(.*\)"$/\1/p' "$STATE/trials/$T/basic-auth.toml"; }
root_crt() { dc exec -T caddy cat /data/caddy/pki/authorities/local/root.crt >"$WORK/root.crt"; }
dashboard_status() {
    root_crt || return 1
    curl -sS --max-time 60 -o "$WORK/body" -w '%{http_code}' --cacert "$WORK/root.crt" \
        -u "$(auth_user):$(password)" https://127.0.0.1/api/dashboard/test
}
expect_dashboard() {
    local want=$1 got
    got=$(dashboard_status) || { echo "request failed"; return 1; }
    [[ $got == "$want" ]] || { echo "want HTTP $want, got $got: $(head -c 300 "$WORK/body")"; return 1; }
}

# --- the flow ---------------------------------------------------------------------------------
check "create $T --provider ssh (host key pinned, login checked)" \
    cli create create "$T" --provider ssh --host 127.0.0.1 --port "$SSH_PORT" --user root \
    --identity "$SSHD_DIR/operator_ed25519" --host-key "$SSHD_DIR/host_ed25519.pub" --remote-dir "$REMOTE"

t0=$SECONDS
check "deploy $T exits 0 (upload, build, up, load, pull, healthy, smoke, exposure probe)" \
    cli deploy1 deploy "$T" --env "$WORK/test.env" --data "$WORK/client.sqlite" --app-dir "$ROOT"
figure "first deploy (build + up + checks): $((SECONDS - t0)) s"

check_deploy_steps() {
    local s
    for s in wait-cloud-init upload-data compose-up load-data pull-model certificate wait-healthy smoke model-speed exposure-probe; do
        grep -q "\[$s\]" "$OUT/deploy1.log" || { echo "step $s not in the output"; return 1; }
    done
    grep -q "trusting the site's own CA" "$OUT/deploy1.log" || { echo "smoke did not use Caddy's internal CA"; return 1; }
    grep -q "ok: certificate for .* verified against the stack's own CA" "$OUT/deploy1.log" || { echo "deploy did not check the site's certificate"; return 1; }
    grep -q "ok   GET / (the dashboard page)" "$OUT/deploy1.log" || { echo "smoke did not see the dashboard page"; return 1; }
    grep -q "ok   GET / without credentials is refused" "$OUT/deploy1.log" || { echo "smoke did not check that / needs credentials"; return 1; }
    grep -q "https://127.0.0.1/" "$OUT/deploy1.log" || { echo "no URL printed"; return 1; }
    grep -Eq "tcp $SSH_PORT +answers \(expected open\)" "$OUT/deploy1.log" || { echo "the probe did not check the trial's ssh port $SSH_PORT"; return 1; }
    for p in 11434 8000 3000; do
        grep -Eq "tcp $p +closed \(expected closed\)" "$OUT/deploy1.log" || { echo "the probe did not find $p closed"; return 1; }
    done
    grep -q "sha256 .* verified on the host" "$OUT/deploy1.log" || { echo "no verified upload"; return 1; }
}
check "deploy walked every step, trusted Caddy's internal CA, printed the URL" check_deploy_steps

check_env_mode() {
    local m
    m=$(stat -c %a "$REMOTE/deploy/.env") || return 1
    [[ $m == 600 ]] || { echo ".env has mode $m"; return 1; }
    grep -q "^COMPOSE_PROJECT_NAME=$PROJECT\$" "$REMOTE/deploy/.env" || { echo ".env lacks the project name"; return 1; }
}
check ".env on the host is 0600 and carries the test env" check_env_mode

check_model() {
    local l
    l=$(dc exec -T ollama ollama list) || { echo "ollama list failed"; return 1; }
    grep -q "^$MODEL " <<<"$l" || { echo "model $MODEL not present: $l"; return 1; }
}
check "model $MODEL was pulled into ollama" check_model

check_services() {
    # deploy waits for the public /health; the containers' own healthchecks report on their
    # intervals, so give them up to two minutes to turn healthy.
    local ps s ok
    for _ in $(seq 60); do
        ps=$(dc ps --format '{{.Service}} {{.Health}}') || return 1
        ok=1
        for s in backend frontend ollama; do
            grep -q "^$s healthy$" <<<"$ps" || ok=0
        done
        ((ok)) && return 0
        sleep 2
    done
    echo "not all healthy: $ps"
    return 1
}
check "backend, frontend, ollama healthy (ollama by its own 'ollama list' healthcheck)" check_services

check_ports() {
    local ps
    ps=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Label "com.docker.compose.service"}} {{.Ports}}')
    while read -r svc ports; do
        [[ $svc == caddy || $ports != *'->'* ]] || { echo "$svc publishes $ports"; return 1; }
    done <<<"$ps"
    grep -q '^caddy .*127.0.0.1:443->443/tcp' <<<"$ps" || { echo "caddy not on 127.0.0.1:443: $ps"; return 1; }
    for p in 11434 8000 3000; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p answers"; return 1; fi
    done
}
check "only caddy publishes; 11434/8000/3000 do not answer" check_ports

check "GET /api/dashboard/test with Basic Auth -> 200 (data loaded)" expect_dashboard 200

check_data_file() {
    dc exec -T backend python3 -c "import sqlite3; c = sqlite3.connect('file:/data/munero.sqlite?mode=ro', uri=True); print(c.execute('select count(*) from sqlite_master').fetchone()[0])" >/dev/null
}
check "the backend reads /data/munero.sqlite" check_data_file

check "smoke $T exits 0" cli smoke1 smoke "$T"
check_model_speed() {
    # Ollama's own figures from the warm-up inside the stack, kept for status.
    grep -Eq "$MODEL: [0-9.]+ tokens/s generated, [0-9]+ tokens/s prompt, loaded in [0-9.]+ s" "$OUT/smoke1.log" \
        || { echo "smoke reported no model speed"; grep -A3 model-speed "$OUT/smoke1.log"; return 1; }
    "$BIN" status "$T" --output json </dev/null >"$OUT/status-speed.json" 2>/dev/null || return 1
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["trials"][0]["model_speed"]; sys.exit(0 if s and s["tokens_per_s"] > 0 and s["model"] == sys.argv[2] else "status: %r" % s)' \
        "$OUT/status-speed.json" "$MODEL"
}
check "smoke measured the model's speed (tokens/s, load time) and status shows it" check_model_speed

# --- auth, onboard, history on the deployed stack ---------------------------------------------
code_as() {
    # code_as USER PASSWORD: HTTP status of the dashboard API through caddy with that login.
    curl -sS --max-time 30 -o /dev/null -w '%{http_code}' --cacert "$WORK/root.crt" -u "$1:$2" https://127.0.0.1/api/dashboard/test
}
caddy_id() { dc ps -q caddy; }
BOB_OLD= BOB_NEW=
check_auth() {
    local before after
    root_crt || return 1
    before=$(caddy_id)
    "$BIN" --output json auth add "$T" bob --show </dev/null >"$OUT/auth-add.json" 2>"$OUT/auth-add.log" || { cat "$OUT/auth-add.log"; return 1; }
    BOB_OLD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$OUT/auth-add.json")
    [[ $(code_as bob "$BOB_OLD") == 200 ]] || { echo "added user bob is not let in"; return 1; }
    cli auth-rotate auth rotate "$T" bob || return 1
    BOB_NEW=$(python3 -c 'import sys,tomllib; print(next(u["password"] for u in tomllib.load(open(sys.argv[1],"rb"))["user"] if u["name"]=="bob"))' "$STATE/trials/$T/users.toml")
    [[ $(code_as bob "$BOB_OLD") == 401 ]] || { echo "bob's old password still works after rotate"; return 1; }
    [[ $(code_as bob "$BOB_NEW") == 200 ]] || { echo "bob's new password does not work"; return 1; }
    [[ $(code_as "$(auth_user)" "$(password)") == 200 ]] || { echo "the first user was affected by bob's rotation"; return 1; }
    cli auth-revoke auth revoke "$T" bob || return 1
    [[ $(code_as bob "$BOB_NEW") == 401 ]] || { echo "revoked bob still gets in"; return 1; }
    after=$(caddy_id)
    [[ -n $before && $before == "$after" ]] || { echo "caddy container changed ($before -> $after): restarted instead of reloaded"; return 1; }
    [[ $(docker inspect -f '{{.RestartCount}} {{.State.StartedAt}}' "$after") == "$(docker inspect -f '{{.RestartCount}} {{.State.StartedAt}}' "$before")" ]]
}
check "auth add/rotate/revoke: new user 200, old password 401, others unaffected, same caddy container" check_auth

check_onboard() {
    cli onboard onboard "$T" --format markdown || return 1
    grep -q "^## Questions to start with" "$OUT/onboard.log" || { echo "no questions section"; return 1; }
    grep -qi "amount\|orders" "$OUT/onboard.log" || { echo "the questions name nothing of the dataset"; return 1; }
    if grep -qF -- "$(password)" "$OUT/onboard.log"; then echo "the password is in the message"; return 1; fi
    cli onboard-self onboard "$T" --self-test || return 1
    grep -Eq "^[0-9]+ of [0-9]+ example questions answered" "$OUT/onboard-self.log" || { echo "no self-test summary"; return 1; }
}
check "onboard names the dataset's measures, hides the password; --self-test reports each question" check_onboard

check_history() {
    local local_log="$STATE/history/$T.jsonl" host_log="$REMOTE/deploy/history.jsonl" a q
    for a in create deploy auth-add auth-rotate auth-revoke; do
        grep -q "\"action\":\"$a\"" "$local_log" || { echo "no $a line locally"; return 1; }
        grep -q "\"action\":\"$a\"" "$host_log" || { echo "no $a line on the host"; return 1; }
    done
    grep -q '"data_sha256":"' "$host_log" || { echo "the deploy line lacks the data's sha256"; return 1; }
    for secret in "$(password)" "$BOB_OLD" "$BOB_NEW"; do
        [[ -n $secret ]] || continue
        if grep -qF -- "$secret" "$local_log" "$host_log"; then echo "a password is in the history"; return 1; fi
    done
    q=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["questions"][0])' <("$BIN" --output json onboard "$T" </dev/null 2>/dev/null)) || return 1
    if grep -qF -- "$q" "$local_log" "$host_log"; then echo "a question is in the history"; return 1; fi
}
check "history: every action locally and on the host, no password, no question" check_history

# A webhook receiver on loopback: each POST body is one line of $WORK/hooks.jsonl.
start_webhook() {
    HOOK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Its output goes to a file: a background job holding the check's output pipe would keep
    # the check (a command substitution) waiting for ever.
    python3 - "$HOOK_PORT" "$WORK/hooks.jsonl" >"$WORK/hooks.log" 2>&1 <<'PY' &
import http.server, sys
port, path = int(sys.argv[1]), sys.argv[2]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(path, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
    HOOK_PID=$!
    local i
    for i in $(seq 50); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$HOOK_PORT" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the webhook receiver did not start"
    return 1
}

check_wipe() {
    start_webhook || return 1
    export MUNERO_WEBHOOK_URL="http://127.0.0.1:$HOOK_PORT/hooks/secret-hook-token"
    cli wipe wipe "$T" --yes || { unset MUNERO_WEBHOOK_URL; return 1; }
    unset MUNERO_WEBHOOK_URL
    grep -q '"event": *"wiped"' "$WORK/hooks.jsonl" 2>/dev/null || { echo "the webhook got no wiped notice"; cat "$WORK/hooks.jsonl" 2>/dev/null; return 1; }
    grep -q "\"trial\": *\"$T\"" "$WORK/hooks.jsonl" || { echo "the wiped notice does not name the trial"; return 1; }
    kill "$HOOK_PID" 2>/dev/null || true
    if grep -q "secret-hook-token" "$OUT/wipe.log"; then echo "the webhook URL was printed"; return 1; fi
    grep -qi "receipt" "$OUT/wipe.log" || { echo "no receipt in the output"; cat "$OUT/wipe.log"; return 1; }
    grep -qi "sha256" "$OUT/wipe.log" || { echo "the receipt names no sha256"; return 1; }
    grep -q "uploaded copy removed" "$OUT/wipe.log" || { echo "the uploaded copy was not reported removed"; return 1; }
}
check "wipe $T --yes exits 0, prints the receipt and notifies the webhook (its URL never printed)" check_wipe
check_wipe_receipt() {
    # The receipt kept in the state dir: the dataset as deployed, the volumes and the uploaded
    # copy removed on the host, and the sweep's word that an existing host has nothing labelled.
    "$BIN" receipt "$T" --output json </dev/null >"$OUT/receipt1.json" 2>"$OUT/receipt1.err" || { cat "$OUT/receipt1.err"; return 1; }
    local deployed
    deployed=$(sed -n 's/.*sha256 \([0-9a-f]\{64\}\) verified on the host.*/\1/p' "$OUT/deploy1.log" | head -n1)
    python3 - "$OUT/receipt1.json" "$deployed" "$PROJECT" <<'PY' || return 1
import json, os, stat, sys
doc = json.load(open(sys.argv[1]))
r, deployed, project = doc["receipt"], sys.argv[2], sys.argv[3]
problems = []
if r["action"] != "wipe":
    problems.append("action %r" % r["action"])
if not r.get("dataset") or r["dataset"]["sha256"] != deployed:
    problems.append("dataset %r, deployed %r" % (r.get("dataset"), deployed))
for want in ("removed: %s_client_data" % project, "removed: %s_app_state" % project, "uploaded copy removed:"):
    if not any(l.startswith(want) for l in r["on_host"]):
        problems.append("on_host lacks %r: %r" % (want, r["on_host"]))
if "no provider API" not in (r["sweep"].get("note") or ""):
    problems.append("sweep %r" % r["sweep"])
mode = stat.S_IMODE(os.stat(doc["text_file"]).st_mode)
if mode != 0o600:
    problems.append("text receipt mode %o" % mode)
if problems:
    sys.exit("receipt: " + "; ".join(problems))
PY
}
check "receipt $T: the wipe receipt names the deployed dataset's sha256, the removed volumes and upload" check_wipe_receipt
check "after wipe: /api/dashboard/test -> 503 (no data)" expect_dashboard 503
check_no_data_in_volume() {
    if dc exec -T backend test -e /data/munero.sqlite; then echo "/data/munero.sqlite still there"; return 1; fi
}
check "after wipe: /data in the backend is empty" check_no_data_in_volume
check_upload_gone() {
    local left
    left=$(find "$REMOTE" -name '*.sqlite*' 2>/dev/null)
    [[ -z $left ]] || { echo "uploaded copies still on the host: $left"; return 1; }
}
check "after wipe: no uploaded copy of the data left on the host" check_upload_gone
check_smoke_fails() {
    # /health stays 503 without data: no need to wait the full health timeout for it.
    if MUNERO_HEALTH_TIMEOUT=15 cli smoke2 smoke "$T" >/dev/null; then echo "smoke passed without data"; return 1; fi
    grep -q "did not become healthy" "$OUT/smoke2.log" || { echo "smoke failed for another reason:"; tail -n 5 "$OUT/smoke2.log"; return 1; }
    return 0
}
check "after wipe: smoke $T fails" check_smoke_fails

t0=$SECONDS
check "deploy $T again exits 0" \
    cli deploy2 deploy "$T" --env "$WORK/test.env" --data "$WORK/client.sqlite" --app-dir "$ROOT"
figure "second deploy (warm): $((SECONDS - t0)) s"
check "after the second deploy: /api/dashboard/test -> 200" expect_dashboard 200
check_reuploaded() {
    grep -q "sha256 .* verified on the host" "$OUT/deploy2.log" || { echo "the wiped dataset was not uploaded again"; grep -A2 upload-data "$OUT/deploy2.log"; return 1; }
}
check "the second deploy uploaded the dataset again (the wipe removed the host's copy)" check_reuploaded

redeploy_unchanged() {
    "$BIN" --output json deploy "$T" --env "$WORK/test.env" --data "$WORK/client.sqlite" --app-dir "$ROOT" \
        </dev/null >"$OUT/deploy3.json" 2>"$OUT/deploy3.log" || { tail -n 20 "$OUT/deploy3.log"; return 1; }
}
t0=$(date +%s.%N)
check "deploy $T with nothing changed exits 0" redeploy_unchanged
figure "redeploy with nothing changed ($(basename "$(dirname "$BIN")") build, smoke included): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; steps: $(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["results"]["seconds"]
print(", ".join(f"{k} {v}" for k, v in s.items() if v >= 0.1))' "$OUT/deploy3.json" 2>&1)"
check_all_skipped() {
    local line step
    line=$(grep "Skipped, unchanged since the last deploy:" "$OUT/deploy3.log") || { echo "no skipped steps named"; tail -n 20 "$OUT/deploy3.log"; return 1; }
    for step in upload-data upload-env upload-bundle compose-up load-data pull-model model-speed; do
        [[ $line == *"$step"* ]] || { echo "$step was not skipped: $line"; return 1; }
    done
    grep -q "skipped: the host already holds sha256" "$OUT/deploy3.log" || { echo "the data was not recognised as held"; return 1; }
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
ran = r["results"]["seconds"]
kept = r["results"].get("model-speed", {})
sys.exit(0 if r["ok"] and r["deployed"] and "smoke" in ran and "exposure-probe" in ran
         and kept.get("skipped") and kept["speed"]["tokens_per_s"] > 0 else 1)' "$OUT/deploy3.json" \
        || { echo "the run did not end deployed with its smoke: $(head -c 300 "$OUT/deploy3.json")"; return 1; }
}
check "the unchanged redeploy skipped data, env, bundle, stack, load, model and its speed (the kept figure reported), and still smoked" check_all_skipped

check_ssh_cmd() {
    cli sshcmd ssh "$T" -- docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}' || return 1
    grep -q caddy "$OUT/sshcmd.log" || { echo "no caddy container listed: $(cat "$OUT/sshcmd.log")"; return 1; }
}
check "ssh $T -- docker ps lists the stack" check_ssh_cmd

check_no_secret() {
    local pw hash f
    pw=$(password)
    [[ -n $pw ]] || { echo "no password in the credentials file"; return 1; }
    hash=$(sed -n "s/^BASIC_AUTH_HASH=//p" "$REMOTE/deploy/.env" | tr -d "'")
    for f in "$OUT"/*.log; do
        if grep -qF -- "$pw" "$f"; then echo "the password appears in $(basename "$f")"; return 1; fi
        if [[ -n $hash ]] && grep -qF -- "$hash" "$f"; then echo "the bcrypt hash appears in $(basename "$f")"; return 1; fi
    done
    if dc logs --no-color 2>&1 | grep -qF -- "$pw"; then echo "the password appears in the stack's logs"; return 1; fi
    local m
    m=$(stat -c %a "$STATE/trials/$T/basic-auth.toml")
    [[ $m == 600 ]] || { echo "basic-auth.toml has mode $m"; return 1; }
}
check "no password (or hash) in any output or stack log; credentials file 0600" check_no_secret

check_no_model() {
    # A model that cannot be had (the stub refuses names with "nonexistent"): the deploy finishes,
    # the dashboard works, smoke says the model is missing; --require-model makes it a failure.
    MUNERO_HEALTH_TIMEOUT=240 cli nomodel deploy "$T" --env "$WORK/test.env" --data "$WORK/client.sqlite" --app-dir "$ROOT" \
        --model nonexistent-model:1b --only upload-env,compose-up,pull-model,wait-healthy,smoke || return 1
    grep -q "warning: model nonexistent-model:1b could not be had" "$OUT/nomodel.log" || { echo "no warning about the model"; return 1; }
    grep -q "warn GET /api/chat/test" "$OUT/nomodel.log" || { echo "smoke did not report the missing model"; grep -i chat "$OUT/nomodel.log"; return 1; }
    expect_dashboard 200 || return 1
    if MUNERO_HEALTH_TIMEOUT=20 cli nomodel2 smoke "$T" --require-model >/dev/null; then echo "smoke --require-model passed without a model"; return 1; fi
    return 0
}
check "no model to be had: deploy finishes, the dashboard works, smoke reports it (--require-model fails)" check_no_model

check_destroy() {
    cli destroy destroy "$T" --yes || return 1
    local left
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $left ]] || { echo "containers left: $left"; return 1; }
    left=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $left ]] || { echo "volumes left: $left"; return 1; }
    [[ ! -e $REMOTE ]] || { echo "$REMOTE still on the host"; return 1; }
    [[ ! -e $STATE/trials/$T ]] || { echo "the local record of $T is still there"; return 1; }
    "$BIN" receipt "$T" --all --output json </dev/null >"$OUT/receipts.json" 2>/dev/null || { echo "no receipts after destroy"; return 1; }
    python3 -c 'import json,sys; a=[r["action"] for r in json.load(open(sys.argv[1]))["receipts"]]; sys.exit(0 if a==["wipe","destroy"] else "receipts: %r" % a)' "$OUT/receipts.json"
}
check "destroy $T --yes: stack, volumes, remote dir and local record gone; wipe and destroy receipts kept" check_destroy

checks_summary
