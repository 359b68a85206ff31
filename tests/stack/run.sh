#!/usr/bin/env bash
# Proof of deploy/ on a real Docker engine: builds the images from the test base images, brings
# the whole stack up with the Ollama API stub (docker-compose.test.yml), and checks through Caddy
# over HTTPS (tls internal) what the issue asks: Basic Auth everywhere but /health, the frontend,
# the dashboard and the copilot via the stub, only caddy publishes ports, Ollama unreachable from
# caddy and the frontend, the client DB read-only for the backend, wipe and reload.
#
# Needs: a running engine (scripts/setup/docker.sh) and the munero-test/* images
# (scripts/setup/base-images.sh). Prints `N passed, M failed`; exits non-zero on any failure.
# Always removes its compose project (containers, networks, volumes) at the end.
#
# Environment: STACK_HTTPS_PORT (18443, or a free port if taken), STACK_HTTP_PORT (18080, likewise),
# STACK_ROWS (20000 sample rows),
# STACK_KEEP=1 to leave the stack running for inspection.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

port_or_free() {
    # The preferred loopback port when nothing listens on it, else one the kernel picks.
    if [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; then
        echo "$1"
    else
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    fi
}
HTTPS_PORT=${STACK_HTTPS_PORT:-$(port_or_free 18443)}
HTTP_PORT=${STACK_HTTP_PORT:-$(port_or_free 18080)}
ROWS=${STACK_ROWS:-20000}
CADDY_VERSION=${CADDY_VERSION:-2.10.2}
PROJECT="munero-stacktest-$(date +%s)-$$"
WORK=$(mktemp -d /tmp/munero-stacktest.XXXXXX)
chmod 700 "$WORK"
BACKEND_IMAGE=munero-test/backend:stack
FRONTEND_IMAGE=munero-test/frontend:stack
AUTH_USER=trial
AUTH_PASS=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
MARKER="zebra$RANDOM$RANDOM"   # a word in a question that must never show up in any log

CHECKS_PREFIX=stack
# shellcheck source=SCRIPTDIR/../lib/checks.sh
source "$ROOT/tests/lib/checks.sh"

dc() {
    docker compose -p "$PROJECT" --env-file "$WORK/test.env" \
        -f "$ROOT/deploy/docker-compose.yml" -f "$ROOT/tests/stack/docker-compose.test.yml" "$@"
}

cleanup() {
    local rc=$?
    if [[ ${STACK_KEEP:-0} == 1 ]]; then
        log "STACK_KEEP=1: leaving project $PROJECT up (work dir $WORK)"
        return
    fi
    if ((failed > 0)) || ((rc != 0)); then
        log "state at failure:"
        dc ps -a 2>&1 | sed 's/^/    /' || true
        dc logs --no-color --tail 25 2>&1 | sed 's/^/    /' || true
    fi
    dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- HTTP helpers (through caddy, over HTTPS, trusting caddy's internal root CA) ---------------
BODY="$WORK/body"
HEADERS="$WORK/headers"
https() {
    # https METHOD PATH [curl args...]: prints the status code; body in $BODY, headers in $HEADERS.
    local method=$1 path=$2
    shift 2
    curl -sS --max-time 60 -o "$BODY" -D "$HEADERS" -w '%{http_code}' \
        --cacert "$WORK/root.crt" --resolve "localhost:$HTTPS_PORT:127.0.0.1" \
        -X "$method" "https://localhost:$HTTPS_PORT$path" "$@"
}
authed() { https "$@" -u "$AUTH_USER:$AUTH_PASS"; }

expect_status() {
    # expect_status WANT METHOD PATH [curl args...]
    local want=$1 got
    shift
    got=$(https "$@") || { echo "request failed"; return 1; }
    [[ $got == "$want" ]] || { echo "want HTTP $want, got $got: $(head -c 300 "$BODY")"; return 1; }
}
expect_authed_status() {
    local want=$1
    shift
    expect_status "$want" "$@" -u "$AUTH_USER:$AUTH_PASS"
}
json() {
    # json EXPR: evaluates a Python expression over the last body as `d`, prints the result.
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$BODY" "$1"
}
expect_json() {
    # expect_json EXPR: the expression over the last body must be true.
    local v
    v=$(json "$1" 2>&1) || { echo "bad JSON body: $(head -c 300 "$BODY")"; return 1; }
    [[ $v == True ]] || { echo "expected $1, body: $(head -c 400 "$BODY")"; return 1; }
}

# --- build --------------------------------------------------------------------------------------
build_image() {
    # build_image TAG CONTEXT BASE: builds from a copy of CONTEXT/Dockerfile without a `# syntax=`
    # line (that line makes BuildKit pull a frontend image from a registry, which is not reachable).
    local tag=$1 ctx=$2 base=$3 t0=$SECONDS df
    df="$WORK/$(basename "$2").Dockerfile"
    local src=${4:-$ctx/Dockerfile}
    [[ -f $src ]] || { log "missing $src"; return 1; }
    sed '/^#[[:space:]]*syntax[[:space:]]*=/d' "$src" >"$df"
    local old new
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    if ! docker build -q --build-arg "BASE_IMAGE=$base" -f "$df" -t "$tag" "$ctx" >"$WORK/build.log" 2>&1; then
        tail -n 40 "$WORK/build.log"
        return 1
    fi
    new=$(docker image inspect -f '{{.Id}}' "$tag")
    # The previous build of this tag is garbage now (unless something still uses it).
    if [[ -n $old && $old != "$new" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    figure "build $tag from $base: $((SECONDS - t0)) s"
}

wait_healthy() {
    # wait_healthy TIMEOUT [HEALTH_STATUS]: all containers of the project with a healthcheck are
    # healthy and /health through caddy answers HEALTH_STATUS (200; 503 when no data is loaded).
    local deadline=$((SECONDS + ${1:-240})) want=${2:-200} ids states
    while ((SECONDS < deadline)); do
        ids=$(dc ps -q)
        states=$(xargs docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' <<<"$ids" | sort | uniq -c | tr '\n' ' ')
        if [[ -n $ids && $states != *starting* && $states != *unhealthy* && $states != *exited* && -s $WORK/root.crt ]] &&
            [[ $(https GET /health 2>/dev/null) == "$want" ]]; then
            return 0
        fi
        if [[ ! -s $WORK/root.crt ]]; then
            dc cp caddy:/data/caddy/pki/authorities/local/root.crt "$WORK/root.crt" >/dev/null 2>&1 || true
        fi
        sleep 1
    done
    echo "not healthy in time: $states"
    return 1
}

main() {
    log "project $PROJECT, caddy on 127.0.0.1:$HTTP_PORT (http) and 127.0.0.1:$HTTPS_PORT (https)"
    for img in munero-test/python:3.13 munero-test/node:20 "munero-test/caddy:$CADDY_VERSION" munero-test/ollama-stub:latest; do
        docker image inspect "$img" >/dev/null 2>&1 || { log "missing $img: run scripts/setup/base-images.sh"; exit 1; }
    done

    local hash
    hash=$(docker run --rm --network none "munero-test/caddy:$CADDY_VERSION" caddy hash-password --plaintext "$AUTH_PASS")
    cat >"$WORK/test.env" <<ENV
COMPOSE_PROJECT_NAME=$PROJECT
MUNERO_DOMAIN=localhost
MUNERO_TLS=internal
ACME_EMAIL=
BASIC_AUTH_USER=$AUTH_USER
BASIC_AUTH_HASH='$hash'
CADDY_HTTP_PUBLISH=127.0.0.1:$HTTP_PORT
CADDY_HTTPS_PUBLISH=127.0.0.1:$HTTPS_PORT
OLLAMA_IMAGE=munero-test/ollama-stub:latest
CADDY_IMAGE=munero-test/caddy:$CADDY_VERSION
BACKEND_IMAGE=$BACKEND_IMAGE
FRONTEND_IMAGE=$FRONTEND_IMAGE
BACKEND_BASE_IMAGE=munero-test/python:3.13
FRONTEND_BASE_IMAGE=munero-test/node:20
OLLAMA_MODEL=qwen2.5-coder:3b
LLM_TIMEOUT=60
DEBUG=false
DEBUG_LOG_PROMPTS=false
MUNERO_ENV_FILE=$WORK/test.env
ENV
    chmod 600 "$WORK/test.env"

    check "compose config renders with the test override" dc config -q
    check "phase_gate.sh offline: lint and config validation pass" \
        env PHASE_GATE_UNIT=0 PHASE_GATE_SCOPE=stack scripts/phase_gate.sh offline

    build_image "$BACKEND_IMAGE" backend munero-test/python:3.13 "${STACK_BACKEND_DOCKERFILE:-}" ||
        { check "backend image builds from munero-test/python:3.13" false; return; }
    check "backend image builds from munero-test/python:3.13" true
    build_image "$FRONTEND_IMAGE" frontend munero-test/node:20 "${STACK_FRONTEND_DOCKERFILE:-}" ||
        { check "frontend image builds from munero-test/node:20" false; return; }
    check "frontend image builds from munero-test/node:20" true
    # The path production takes: compose's own build sections (contexts, BASE_IMAGE args).
    check "docker compose build builds backend and frontend from the compose file" dc build -q backend frontend
    for img in "$BACKEND_IMAGE" "$FRONTEND_IMAGE" munero-test/ollama-stub:latest "munero-test/caddy:$CADDY_VERSION"; do
        figure "image size $img: $(docker image inspect -f '{{.Size}}' "$img" | awk '{printf "%.0f MB", $1/1e6}')"
    done

    log "sample database ($ROWS rows) and loading it into client_data"
    python3 backend/scripts/make_sample_db.py --rows "$ROWS" --seed 7 --out "$WORK/sample.sqlite" >/dev/null
    check "load_client_data.sh copies the database into the volume" \
        env COMPOSE_PROJECT_NAME="$PROJECT" BACKEND_IMAGE="$BACKEND_IMAGE" deploy/load_client_data.sh "$WORK/sample.sqlite"

    log "docker compose up"
    local t0 t1
    t0=$(date +%s.%N)
    dc up -d --no-build >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; check "compose up" false; return; }
    check "stack becomes healthy" wait_healthy 240
    t1=$(date +%s.%N)
    figure "up -> healthy (all healthchecks + /health 200 through caddy): $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f s", b-a}')"
    [[ -s $WORK/root.crt ]] || { log "no caddy root certificate; cannot continue"; return; }

    # --- Basic Auth and /health ---------------------------------------------------------------
    check "no credentials: / -> 401" expect_status 401 GET /
    check "no credentials: /api/dashboard/test -> 401" expect_status 401 GET /api/dashboard/test
    check "no credentials: /api/chat/test -> 401" expect_status 401 GET /api/chat/test
    # Over HTTP/1.1: on HTTP/2 Caddy answers 401 before reading the body and then resets the
    # stream with NO_ERROR (RFC 9113 8.1 allows it); curl 7.88 reports that as error 92 half the time.
    check "no credentials: POST /api/chat/ -> 401" expect_status 401 POST /api/chat/ --http1.1 \
        -H 'Content-Type: application/json' --data '{"question":"x"}'
    check "no credentials: /health/live -> 401 (only /health is open)" expect_status 401 GET /health/live
    check "wrong password: / -> 401" expect_status 401 GET / -u "$AUTH_USER:not-$AUTH_PASS"
    check_challenge() {
        expect_status 401 GET / || return 1
        grep -qi '^www-authenticate: basic' "$HEADERS" || { echo "no WWW-Authenticate: Basic"; return 1; }
    }
    check "401 asks for Basic Auth" check_challenge
    check_health_ok() {
        expect_status 200 GET /health || return 1
        expect_json 'd == {"status": "ok"}'
    }
    check "/health without credentials -> 200 with status only" check_health_ok
    check_headers() {
        authed GET / >/dev/null
        local h
        for h in strict-transport-security x-content-type-options x-frame-options referrer-policy content-security-policy; do
            grep -qi "^$h:" "$HEADERS" || { echo "missing header $h"; return 1; }
        done
        if grep -qi '^server:' "$HEADERS"; then echo "Server header present"; return 1; fi
    }
    check "security headers set, no Server header" check_headers
    check_redirect() {
        local code
        code=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$HTTP_PORT/" -H 'Host: localhost')
        [[ $code == 30[18]\ https://localhost* ]] || { echo "http -> $code"; return 1; }
    }
    check "plain http redirects to https" check_redirect

    # --- with credentials -------------------------------------------------------------------------
    check_frontend() {
        expect_authed_status 200 GET / || return 1
        grep -qi '^content-type: text/html' "$HEADERS" || { echo "not HTML"; return 1; }
        grep -qi '<html' "$BODY" || { echo "no <html> in body"; return 1; }
    }
    check "with credentials: / is the frontend's HTML" check_frontend
    check_dashboard() {
        expect_authed_status 200 GET /api/dashboard/test || return 1
        expect_json "d['ok'] is True and d['rows'] == $ROWS and d['tables'] >= 1"
    }
    check "with credentials: /api/dashboard/test ok with the sample rows" check_dashboard
    check_chat_test() {
        expect_authed_status 200 GET /api/chat/test || return 1
        expect_json "d['ok'] is True and d['reachable'] is True and d['model_present'] is True"
    }
    check "with credentials: /api/chat/test reaches the model (stub)" check_chat_test
    check_chat() {
        expect_authed_status 200 POST /api/chat/ -H 'Content-Type: application/json' \
            --data "{\"question\":\"Which products sell best $MARKER?\"}" || return 1
        expect_json "d.get('error') is None and d['sql'].strip().upper().startswith(('SELECT','WITH')) and len(d['rows']) > 0 and len(d['columns']) > 0"
    }
    check "with credentials: POST /api/chat/ returns SQL and rows via the stub" check_chat

    check_history() {
        dc exec -T backend sh -c 'ls -A /state' | grep -q . || { echo "app_state (/state) is empty after a chat"; return 1; }
    }
    check "chat history is written to the app_state volume" check_history

    check "phase_gate.sh smoke passes against the stack" env BASIC_AUTH_USER="$AUTH_USER" \
        BASIC_AUTH_PASSWORD="$AUTH_PASS" SMOKE_CACERT="$WORK/root.crt" \
        SMOKE_RESOLVE="localhost:$HTTPS_PORT:127.0.0.1" scripts/phase_gate.sh smoke "https://localhost:$HTTPS_PORT"
    check_smoke_fails_without_data() {
        # (run after the wipe) the gate must notice a stack without data
        if env BASIC_AUTH_USER="$AUTH_USER" BASIC_AUTH_PASSWORD="$AUTH_PASS" SMOKE_CACERT="$WORK/root.crt" \
            SMOKE_RESOLVE="localhost:$HTTPS_PORT:127.0.0.1" scripts/phase_gate.sh smoke "https://localhost:$HTTPS_PORT"; then
            echo "smoke passed on a stack without data"
            return 1
        fi
    }

    # --- exposure ---------------------------------------------------------------------------------
    check_published() {
        local service ports bad=0
        while read -r service ports; do
            if [[ $service == caddy ]]; then
                [[ $ports == *"127.0.0.1:$HTTPS_PORT->443/tcp"* && $ports == *"127.0.0.1:$HTTPS_PORT->443/udp"* &&
                    $ports == *"127.0.0.1:$HTTP_PORT->80/tcp"* ]] || { echo "caddy ports: $ports"; bad=1; }
            elif [[ $ports == *"->"* ]]; then
                echo "$service publishes: $ports"
                bad=1
            fi
        done < <(docker ps --filter "label=com.docker.compose.project=$PROJECT" \
            --format '{{.Label "com.docker.compose.service"}} {{.Ports}}')
        return $bad
    }
    check "docker ps: only caddy publishes ports (80, 443, 443/udp)" check_published
    check_host_ports() {
        local port bad=0 who
        for port in 11434 8000 3000; do
            who=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
            if [[ $who == *docker-proxy* ]]; then
                echo "docker publishes $port: $who"
                bad=1
            elif [[ -z $who ]] && curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/"; then
                echo "something answers on 127.0.0.1:$port"
                bad=1
            fi
            # A listener that is not docker's (another program on this host) is not the stack's.
        done
        return $bad
    }
    check "from the host nothing of the stack answers on 11434, 8000, 3000" check_host_ports

    # --- the client DB is read-only for the backend -----------------------------------------------
    local write_py="import sqlite3; c = sqlite3.connect('/data/munero.sqlite'); c.execute('CREATE TABLE pwned(x)'); c.commit()"
    check_ro() {
        local out user
        for user in "" 0; do
            if out=$(dc exec -T ${user:+-u "$user"} backend python3 -c "$write_py" 2>&1); then
                echo "write succeeded as user '${user:-image default}'"
                return 1
            fi
            [[ $out == *"readonly"* || $out == *"read-only"* || $out == *"Read-only"* || $out == *"unable to open"* ]] ||
                { echo "unexpected error: $out"; return 1; }
            if out=$(dc exec -T ${user:+-u "$user"} backend sh -c 'echo x >> /data/munero.sqlite' 2>&1); then
                echo "append succeeded as user '${user:-image default}'"
                return 1
            fi
            # The file mode (0444) stops the app user first; root in the container has no
            # capabilities (cap_drop: ALL), so it may be stopped by either; the mount is checked below.
            [[ $out == *"Read-only file system"* || $out == *"Permission denied"* ]] ||
                { echo "append as '${user:-image default}': $out"; return 1; }
        done
        [[ $(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/data"}}{{.RW}}{{end}}{{end}}' "$(dc ps -q backend)") == false ]] ||
            { echo "/data mount is RW"; return 1; }
        # The mount itself refuses writes, whatever the file mode: a new file cannot be created.
        if out=$(dc exec -T backend sh -c 'touch /data/new-file' 2>&1); then echo "created a file in /data"; return 1; fi
        [[ $out == *"Read-only file system"* ]] || { echo "touch /data/new-file: $out"; return 1; }
    }
    check "the backend cannot write the client DB, not even as root (read-only mount)" check_ro

    # --- Ollama only on the private network -------------------------------------------------------
    check_backend_reaches_ollama() {
        dc exec -T backend python3 -c "import urllib.request; urllib.request.urlopen('http://ollama:11434/api/version', timeout=5)"
    }
    check "backend reaches ollama:11434 (control)" check_backend_reaches_ollama
    check_caddy_isolated() {
        if dc exec -T caddy getent hosts ollama; then echo "caddy resolves ollama"; return 1; fi
        if dc exec -T caddy bash -c 'exec 3<>/dev/tcp/ollama/11434' 2>/dev/null; then echo "caddy connects"; return 1; fi
        return 0
    }
    check "caddy cannot reach ollama:11434" check_caddy_isolated
    check_frontend_isolated() {
        local out
        if out=$(dc exec -T frontend node -e "fetch('http://ollama:11434/api/version',{signal:AbortSignal.timeout(5000)}).then(()=>process.exit(0),e=>{console.log(String((e.cause&&e.cause.code)||e));process.exit(3)})" 2>&1); then
            echo "frontend reached ollama"
            return 1
        fi
        [[ $out == *ENOTFOUND* || $out == *EAI_AGAIN* ]] || { echo "unexpected: $out"; return 1; }
    }
    check "frontend cannot reach ollama:11434 (name does not resolve)" check_frontend_isolated
    check_networks() {
        local private="${PROJECT}_private" internal members
        internal=$(docker network inspect -f '{{.Internal}}' "$private")
        [[ $internal == false ]] || { echo "$private is internal: ollama could not pull models"; return 1; }
        members=$(docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "$private")
        [[ $members == *ollama* && $members == *backend* && $members != *caddy* && $members != *frontend* ]] ||
            { echo "$private members: $members"; return 1; }
    }
    check "private network: ollama + backend only, not internal (model pulls work)" check_networks

    # --- logs carry no question text --------------------------------------------------------------
    check_logs() {
        if dc logs --no-color 2>&1 | grep -q "$MARKER"; then
            echo "a question's text appears in the logs:"
            dc logs --no-color 2>&1 | grep "$MARKER" | head -n 3
            return 1
        fi
    }
    check "no question text in any container log (DEBUG_LOG_PROMPTS=false)" check_logs

    check_refuses_corrupt() {
        printf 'this is not a database' >"$WORK/corrupt.sqlite"
        if env COMPOSE_PROJECT_NAME="$PROJECT" BACKEND_IMAGE="$BACKEND_IMAGE" \
            deploy/load_client_data.sh "$WORK/corrupt.sqlite"; then
            echo "a corrupt file was loaded"
            return 1
        fi
        expect_authed_status 200 GET /api/dashboard/test || return 1
        expect_json "d['rows'] == $ROWS" || return 1
        [[ -z $(dc exec -T backend sh -c 'ls -A /data | grep -v "^munero.sqlite$"') ]] || { echo "leftovers in /data"; return 1; }
    }
    check "load_client_data.sh refuses a corrupt file and keeps the loaded data" check_refuses_corrupt

    # --- degraded modes ----------------------------------------------------------------------------
    until_authed_status() {
        # until_authed_status WANT PATH: polls (30 s at most) until PATH answers WANT.
        local deadline=$((SECONDS + 30))
        while ((SECONDS < deadline)); do
            [[ $(authed GET "$2" 2>/dev/null) == "$1" ]] && return 0
            sleep 1
        done
        echo "$2 never answered $1: $(head -c 300 "$BODY")"
        return 1
    }
    check_without_ollama() {
        dc stop ollama >/dev/null 2>&1 || { echo "stop ollama failed"; return 1; }
        dc restart backend >/dev/null 2>&1 || { echo "restart backend failed"; return 1; }
        until_authed_status 200 /api/dashboard/test || return 1
        expect_authed_status 200 GET /api/chat/test || return 1
        expect_json "d['ok'] is False and d['reachable'] is False and bool(d['error'])" || return 1
        expect_authed_status 503 POST /api/chat/ -H 'Content-Type: application/json' \
            --data '{"question":"How many orders per month?"}' || return 1
        expect_status 503 GET /health
    }
    check "backend starts without Ollama: dashboards work, chat says the model is unreachable" check_without_ollama
    check_ollama_back() {
        dc start ollama >/dev/null 2>&1 || return 1
        wait_healthy 90 200
    }
    check "Ollama back: /health 200 again without restarting the backend" check_ollama_back
    check_frontend_down() {
        dc stop frontend >/dev/null 2>&1 || return 1
        expect_authed_status 502 GET / || return 1
        grep -q 'starting or unavailable' "$BODY" || { echo "body: $(head -c 200 "$BODY")"; return 1; }
        expect_authed_status 200 GET /api/dashboard/test || return 1
        dc start frontend >/dev/null 2>&1 && wait_healthy 90 200
    }
    check "frontend down: caddy answers 502 with a plain message, the API still works" check_frontend_down

    # --- wipe and reload --------------------------------------------------------------------------
    check_wipe_needs_yes() {
        local rc=0
        MUNERO_COMPOSE_ARGS="-p $PROJECT --env-file $WORK/test.env -f $ROOT/deploy/docker-compose.yml -f $ROOT/tests/stack/docker-compose.test.yml" \
            RECEIPT_DIR="$WORK/receipts" deploy/wipe_client_data.sh </dev/null || rc=$?
        [[ $rc == 2 ]] || { echo "exit $rc, want 2"; return 1; }
        expect_authed_status 200 GET /api/dashboard/test
    }
    check "wipe without --yes and without a terminal refuses (exit 2), data untouched" check_wipe_needs_yes
    check_wipe() {
        local wipe_out
        wipe_out=$(MUNERO_COMPOSE_ARGS="-p $PROJECT --env-file $WORK/test.env -f $ROOT/deploy/docker-compose.yml -f $ROOT/tests/stack/docker-compose.test.yml" \
            RECEIPT_DIR="$WORK/receipts" deploy/wipe_client_data.sh --yes 2>&1) || { echo "$wipe_out"; return 1; }
        [[ $wipe_out == *"result:    WIPED"* && $wipe_out == *"removed:   ${PROJECT}_client_data"* &&
            $wipe_out == *"removed:   ${PROJECT}_app_state"* ]] || { echo "$wipe_out"; return 1; }
        ls "$WORK"/receipts/wipe-*.txt >/dev/null || { echo "no receipt file"; return 1; }
    }
    check "wipe_client_data.sh removes client_data and app_state and prints a receipt" check_wipe
    cat "$WORK"/receipts/wipe-*.txt 2>/dev/null | sed 's/^/      | /' || true
    wait_healthy 120 503 >/dev/null || true
    check_no_data() {
        expect_authed_status 503 GET /api/dashboard/test || return 1
        grep -qi 'no data' "$BODY" || { echo "detail does not say no data: $(cat "$BODY")"; return 1; }
    }
    check "after wipe: the backend says no data is loaded" check_no_data
    check_health_degraded() {
        expect_status 503 GET /health || return 1
        expect_json 'd == {"status": "degraded"}'
    }
    check "after wipe: /health -> 503 status only" check_health_degraded
    check_state_empty() {
        local left
        left=$(dc exec -T backend sh -c 'ls -A /data /state' 2>&1)
        [[ $(printf '%s\n' "$left" | grep -cv -e '^/data:$' -e '^/state:$' -e '^$') == 0 ]] || { echo "$left"; return 1; }
    }
    check "after wipe: /data and /state are empty" check_state_empty
    check "after wipe: phase_gate.sh smoke fails (no data)" check_smoke_fails_without_data

    check "load_client_data.sh again" \
        env COMPOSE_PROJECT_NAME="$PROJECT" BACKEND_IMAGE="$BACKEND_IMAGE" deploy/load_client_data.sh "$WORK/sample.sqlite"
    wait_healthy 120 >/dev/null || true
    check "after reload: /api/dashboard/test ok again" check_dashboard
    check "after reload: POST /api/chat/ answers again" check_chat
    check "after reload: /health -> 200" check_health_ok
}

main
checks_summary
