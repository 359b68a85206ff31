#!/usr/bin/env bash
# The whole chain on a real VM (`--provider local`, QEMU; TCG where KVM does not really work):
# create boots our cloud-init from a NoCloud seed and pins the injected host key; deploy waits
# for cloud-init, uploads the data, ships the registry-free test images (the Ollama API stub
# stands in for ollama), brings the stack up behind Caddy, pulls the model through the stub, and
# smokes https://127.0.0.1:<forwarded 443>/ with Basic Auth (a question answered with SQL and
# rows, 401 without credentials) and probes the forwards (11434/8000/3000 closed inside); then
# wipe (no data left on the VM, smoke fails) and destroy (QEMU process, disk, seed, record gone).
# Prints a phase table and `N passed, M failed`.
#
# Needs: scripts/setup/qemu.sh, a running Docker engine with the munero-test/* images
# (scripts/setup/docker.sh, scripts/setup/base-images.sh), the binary (MUNERO_BIN) and a VM image
# directory (VM_IMAGE, from `munero-infra image build`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=${MUNERO_BIN:?set MUNERO_BIN}
IMAGE=${VM_IMAGE:?set VM_IMAGE to a directory made by munero-infra image build}
ROWS=${VM_E2E_ROWS:-3000}
CADDY_VERSION=${CADDY_VERSION:-2.10.2}
# The stub serves this model; the VM gets its files from a small local store (--ship-model).
MODEL=qwen2.5-coder:3b
T=vm-e2e
WORK=$(mktemp -d /tmp/munero-vme2e.XXXXXX)
chmod 700 "$WORK"
STATE=$WORK/state
OUT=$WORK/out
mkdir -p "$STATE" "$OUT"
export MUNERO_STATE_DIR=$STATE
export XDG_CACHE_HOME=$WORK/cache
export MUNERO_HEALTH_TIMEOUT=${MUNERO_HEALTH_TIMEOUT:-900}
export MUNERO_CLOUD_INIT_TIMEOUT=${MUNERO_CLOUD_INIT_TIMEOUT:-2400}
export MUNERO_VM_BOOT_TIMEOUT=${MUNERO_VM_BOOT_TIMEOUT:-900}

CHECKS_PREFIX=vm-e2e
# shellcheck source=SCRIPTDIR/../lib/checks.sh
source "$ROOT/tests/lib/checks.sh"

cli() {
    # cli LABEL ARGS...: the binary with stdin closed, output kept in $OUT/LABEL.log (JSON on stdout
    # in $OUT/LABEL.json when --output json is among the args).
    local label=$1
    shift
    if "$BIN" "$@" </dev/null >"$OUT/$label.json" 2>"$OUT/$label.log"; then
        return 0
    else
        local rc=$?
        echo "munero-infra $* exited $rc; last lines:"
        tail -n 40 "$OUT/$label.log"
        return "$rc"
    fi
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }
vm_pid() { sed -n 's/^pid = //p' "$STATE/trials/$T/trial.toml" | head -n1; }

cleanup() {
    local rc=$?
    if [[ ${VM_E2E_KEEP:-0} == 1 ]]; then
        log "VM_E2E_KEEP=1: leaving the VM and $WORK in place"
        return
    fi
    if ((failed > 0)) || ((rc != 0)); then
        log "serial console of the VM ends:"
        tail -n 30 "$STATE/trials/$T/vm/console.log" 2>/dev/null | sed 's/^/    /' || true
    fi
    if [[ -f $STATE/trials/$T/trial.toml ]]; then
        "$BIN" destroy "$T" --yes </dev/null >/dev/null 2>&1 || true
    fi
    local pid
    pid=$(pgrep -f "munero-$T " || true)
    [[ -n $pid ]] && kill -9 $pid 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -x $BIN ]] || { log "no binary at $BIN"; exit 1; }
for img in munero-test/python:3.13 munero-test/node:20 "munero-test/caddy:$CADDY_VERSION" munero-test/ollama-stub:latest; do
    docker image inspect "$img" >/dev/null 2>&1 || { log "image $img missing: run scripts/setup/base-images.sh"; exit 1; }
done

# A model store laid out as Ollama lays it out: manifests/registry.ollama.ai/library/<name>/<tag>
# naming its config and layer blobs (blobs/sha256-<hex>). Small made-up blobs: only the copying is
# under test; the stub answers for the model.
STORE=$WORK/models
mkdir -p "$STORE/manifests/registry.ollama.ai/library/qwen2.5-coder" "$STORE/blobs"
digests=()
for part in config weights template; do
    head -c 65536 /dev/urandom >"$WORK/$part.bin"
    d=$(sha256sum "$WORK/$part.bin" | cut -d' ' -f1)
    mv "$WORK/$part.bin" "$STORE/blobs/sha256-$d"
    digests+=("$d")
done
cat >"$STORE/manifests/registry.ollama.ai/library/qwen2.5-coder/3b" <<MANIFEST
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
 "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:${digests[0]}","size":65536},
 "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:${digests[1]}","size":65536},
           {"mediaType":"application/vnd.ollama.image.template","digest":"sha256:${digests[2]}","size":65536}]}
MANIFEST
# A second model in the store that must not travel.
mkdir -p "$STORE/manifests/registry.ollama.ai/library/other"
cp "$STORE/manifests/registry.ollama.ai/library/qwen2.5-coder/3b" "$STORE/manifests/registry.ollama.ai/library/other/1b"

python3 backend/scripts/make_sample_db.py --rows "$ROWS" --seed 11 --end 2025-12-31 --out "$WORK/client.sqlite" >/dev/null
cat >"$WORK/test.env" <<ENV
# vm e2e: registry-free test images, shipped into the VM (it reaches no registry here).
OLLAMA_IMAGE=munero-test/ollama-stub:latest
CADDY_IMAGE=munero-test/caddy:$CADDY_VERSION
BACKEND_BASE_IMAGE=munero-test/python:3.13
FRONTEND_BASE_IMAGE=munero-test/node:20
BACKEND_IMAGE=munero-test/backend:vm-e2e
FRONTEND_IMAGE=munero-test/frontend:vm-e2e
OLLAMA_MODEL=$MODEL
ENV

# --- create: boot, pinned host key --------------------------------------------------------------
# A process that ended but was not reaped (the daemonized QEMU's parent is PID 1, which in a
# container may never reap) is a zombie: it has stopped, though `kill -0` still finds it.
running() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}
plan_of() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["plan"], sort_keys=True))' "$1"; }
check "create --dry-run" cli create-dry --output json create "$T" --provider local --image "$IMAGE" --size 2x4 --days 1 --dry-run
t0=$SECONDS
check "create $T --provider local boots the VM and SSH answers with the pinned host key" \
    cli create --output json create "$T" --provider local --image "$IMAGE" --size 2x4 --days 1
T_CREATE=$((SECONDS - t0))
check_create() {
    [[ $(json "$OUT/create.json" 'd["provider"]') == local ]] || { echo "provider is not local"; return 1; }
    local pid
    pid=$(vm_pid)
    running "$pid" || { echo "no QEMU process $pid"; return 1; }
    grep -q "SSH answers with the pinned host key" "$OUT/create.log" || { echo "no pinned login reported"; return 1; }
    [[ -f $STATE/trials/$T/vm/disk.qcow2 && -f $STATE/trials/$T/vm/seed.iso ]] || { echo "overlay or seed missing"; return 1; }
    if [[ -e $STATE/trials/$T/vm/seed ]]; then echo "the seed's source files (host private key) were left behind"; return 1; fi
}
check "the VM runs from a thin overlay and a NoCloud seed; the seed's sources are gone" check_create
same_create_plan() {
    # The dry run generated keys it did not keep: compare without the fingerprints.
    diff <(plan_of "$OUT/create-dry.json" | sed 's/SHA256:[A-Za-z0-9+\/]*//g') <(plan_of "$OUT/create.json" | sed 's/SHA256:[A-Za-z0-9+\/]*//g')
}
check "the create plan that ran is the one the dry run printed (ports included)" same_create_plan
ACCEL=$(json "$OUT/create.json" 'd["vm"]["accel"]' 2>/dev/null || echo "?")
BOOT_S=$(json "$OUT/create.json" 'd["timings"]["wait ssh"]' 2>/dev/null || echo "?")

# --- deploy ---------------------------------------------------------------------------------------
t0=$SECONDS
check "deploy $T --ship-images --ship-model (cloud-init, upload, images, up, model, healthy, smoke, exposure probe)" \
    cli deploy --output json deploy "$T" --env "$WORK/test.env" --data "$WORK/client.sqlite" --ship-images --app-dir "$ROOT" \
    --ship-model "$STORE"
T_DEPLOY=$((SECONDS - t0))
step_s() { json "$OUT/deploy.json" "d['results']['seconds'].get('$1', '-')" 2>/dev/null || echo "-"; }
check_deploy() {
    local s
    for s in wait-cloud-init upload-data ship-images compose-up load-data ship-model certificate wait-healthy smoke model-speed exposure-probe; do
        grep -q "\[$s\]" "$OUT/deploy.log" || { echo "step $s not run"; return 1; }
    done
    grep -Eq "[0-9.]+ tokens/s generated" "$OUT/deploy.log" || { echo "no model speed figure"; grep -A3 model-speed "$OUT/deploy.log"; return 1; }
    grep -q "ok   POST /api/chat/" "$OUT/deploy.log" || { echo "no answered question through Caddy"; grep -i chat "$OUT/deploy.log" | tail -3; return 1; }
    grep -q "without credentials is refused" "$OUT/deploy.log" || { echo "no 401 check"; return 1; }
    for p in 11434 8000 3000; do
        local hp
        hp=$(sed -n "s/^\"\{0,1\}$p\"\{0,1\} = //p" "$STATE/trials/$T/trial.toml")
        grep -Eq "tcp $hp +closed \(expected closed\)" "$OUT/deploy.log" || { echo "the forward of $p ($hp) was not found closed"; return 1; }
    done
    grep -q "ready since" "$OUT/deploy.log" || { echo "cloud-init's ready marker was not seen"; return 1; }
}
check "deploy ran cloud-init's wait, shipped the images, answered a question, kept 11434/8000/3000 closed" check_deploy

check_model_in_volume() {
    local m=/root/.ollama/models
    cli model ssh "$T" -- "cd munero/deploy && docker compose exec -T ollama sh -c 'ls $m/manifests/registry.ollama.ai/library; ls $m/blobs'" || return 1
    grep -q "qwen2.5-coder" "$OUT/model.json" || { echo "the model's manifest is not in the volume: $(cat "$OUT/model.json")"; return 1; }
    if grep -q "^other$" "$OUT/model.json"; then echo "another model of the store travelled too"; return 1; fi
    [[ $(grep -c '^sha256-' "$OUT/model.json") == 3 ]] || { echo "expected the 3 blobs: $(cat "$OUT/model.json")"; return 1; }
    if grep -q '\.sha256$' "$OUT/model.json"; then echo "upload receipts went into the volume"; return 1; fi
}
check "--ship-model: the model's manifest and its 3 blobs (and nothing else) are in the VM's Ollama volume" check_model_in_volume

check_cloud_init() {
    cli ci ssh "$T" -- "cloud-init status --long; test -f /var/lib/cloud/instance/boot-finished" || return 1
    grep -q "status: done" "$OUT/ci.json" || { echo "cloud-init is not done: $(cat "$OUT/ci.json")"; return 1; }
}
check "cloud-init on the VM: status done, boot-finished" check_cloud_init

check_timer() {
    # The on-box kill path cloud-init installed: enabled, due at the expiry plus a day.
    local expires
    expires=$(json "$OUT/create.json" 'd["expires_unix"]')
    cli timer ssh "$T" -- "systemctl is-enabled munero-expire.timer; grep ^MUNERO_EXPIRES= /etc/munero/trial.env; grep ^OnCalendar= /etc/systemd/system/munero-expire.timer" || return 1
    grep -q "^enabled" "$OUT/timer.json" || { echo "the expiry timer is not enabled: $(cat "$OUT/timer.json")"; return 1; }
    grep -q "^MUNERO_EXPIRES=$expires\$" "$OUT/timer.json" || { echo "trial.env does not carry the expiry $expires: $(cat "$OUT/timer.json")"; return 1; }
    grep -q "^OnCalendar=$(date -u -d "@$((expires + 86400))" '+%Y-%m-%d %H:%M:%S') UTC\$" "$OUT/timer.json" || { echo "the timer is not at expiry + 1 day: $(cat "$OUT/timer.json")"; return 1; }
    # extend moves it (and the record).
    cli extend --output json extend "$T" --days 2 || return 1
    local moved=$((expires + 2 * 86400))
    cli timer2 ssh "$T" -- "grep ^MUNERO_EXPIRES= /etc/munero/trial.env; grep ^OnCalendar= /etc/systemd/system/munero-expire.timer" || return 1
    grep -q "^MUNERO_EXPIRES=$moved\$" "$OUT/timer2.json" || { echo "extend did not move trial.env: $(cat "$OUT/timer2.json")"; return 1; }
    grep -q "^OnCalendar=$(date -u -d "@$((moved + 86400))" '+%Y-%m-%d %H:%M:%S') UTC\$" "$OUT/timer2.json" || { echo "extend did not move the timer: $(cat "$OUT/timer2.json")"; return 1; }
    grep -q "^expires_unix = $moved\$" "$STATE/trials/$T/trial.toml" || { echo "extend did not move the record"; return 1; }
}
check "the VM's own wipe timer is due a day after the expiry, and extend moves it" check_timer

# --- wipe and destroy ------------------------------------------------------------------------------
check "wipe $T --yes" cli wipe wipe "$T" --yes
check_wiped() {
    cli left ssh "$T" -- "ls munero/data 2>/dev/null | grep -c sqlite || true" || return 1
    [[ $(tr -d '[:space:]' <"$OUT/left.json") == 0 ]] || { echo "uploaded data still on the VM"; return 1; }
    if MUNERO_HEALTH_TIMEOUT=20 cli smoke2 smoke "$T"; then echo "smoke passed without data"; return 1; fi
    return 0
}
check "after wipe: no data on the VM and smoke fails" check_wiped

PID=$(vm_pid)
check "destroy --dry-run" cli destroy-dry --output json destroy "$T" --dry-run
t0=$SECONDS
check "destroy $T --yes" cli destroy --output json destroy "$T" --yes
check "the destroy plan that ran is the one the dry run printed" diff <(plan_of "$OUT/destroy-dry.json") <(plan_of "$OUT/destroy.json")
T_DESTROY=$((SECONDS - t0))
check_gone() {
    if running "$PID"; then echo "QEMU process $PID still runs: $(cat /proc/$PID/stat 2>/dev/null)"; return 1; fi
    [[ ! -e $STATE/trials/$T ]] || { echo "the trial's record, overlay or seed is still there"; ls -R "$STATE/trials/$T"; return 1; }
}
check "after destroy: QEMU process, overlay, seed and record are gone" check_gone

echo
log "phases (s), accel $ACCEL:"
printf '  %-22s %s\n' "create (to SSH)" "$T_CREATE" "  of which boot to SSH" "$BOOT_S" \
    "cloud-init (rest)" "$(step_s wait-cloud-init)" "upload data" "$(step_s upload-data)" \
    "image build + load" "$(step_s ship-images)" "compose up" "$(step_s compose-up)" "model copy" "$(step_s ship-model)" \
    "certificate" "$(step_s certificate)" "healthy" "$(step_s wait-healthy)" "smoke" "$(step_s smoke)" "model speed" "$(step_s model-speed)" "exposure probe" "$(step_s exposure-probe)" \
    "deploy total" "$T_DEPLOY" "destroy" "$T_DESTROY"
checks_summary
