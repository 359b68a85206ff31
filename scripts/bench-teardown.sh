#!/usr/bin/env bash
# Teardown at scale: how many API requests and how much wall time `teardown --expired` needs when
# every Hetzner API request takes LATENCY_MS, for each trial count in TRIALS.
#
#   scripts/bench-teardown.sh                       # TRIALS="10 50" LATENCY_MS=200
#   scripts/bench-teardown.sh --trials "5 20" --latency-ms 100
#   MUNERO_BIN=/path/to/munero-infra TRIALS=50 scripts/bench-teardown.sh
#
# Runs the Hetzner fake directly (no Prism: the contract check would add its own latency) on a
# free loopback port, seeds N expired trials (server + firewall applied to it + SSH key, all
# managed) plus LIVE live trials and unlabelled or unmanaged decoys, runs the real binary, and
# counts the requests in the fake's request log. Afterwards every expired trial must be gone and
# every live trial and decoy still there: otherwise it exits 1 (a fast teardown that deletes the
# wrong things is not a result). Prints one table row per trial count.
#
# Env: MUNERO_BIN (default target/release/munero-infra, built when missing), TRIALS, LATENCY_MS,
# LIVE (live trials, default 2), ACTION_POLLS (reads before a fake action finishes, default 1),
# POLL_MS (the CLI's MUNERO_POLL_MS; default: unset, the CLI's own 1 s first poll interval), DETAIL=1 (requests by endpoint on stderr),
# KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TRIALS=${TRIALS:-"10 50"}
LATENCY_MS=${LATENCY_MS:-200}
LIVE=${LIVE:-2}
ACTION_POLLS=${ACTION_POLLS:-1}
POLL_MS=${POLL_MS:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) TRIALS=$2; shift 2 ;;
    --latency-ms) LATENCY_MS=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-teardown: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

BIN=${MUNERO_BIN:-target/release/munero-infra}
if [ ! -x "$BIN" ]; then
  if [ -n "${MUNERO_BIN:-}" ]; then
    echo "bench-teardown: MUNERO_BIN=$MUNERO_BIN is not an executable" >&2
    exit 2
  fi
  cargo build --release --bin munero-infra
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-teardown.XXXXXX")
FAKE_PID=
cleanup() {
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "bench-teardown: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Started once: each trial count begins with a reset, which keeps the start-up latency.
python3 tests/hetzner_fake/fake.py --host 127.0.0.1 --port 0 --no-root --latency-ms "$LATENCY_MS" \
  --action-polls "$ACTION_POLLS" --starting-polls 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
FAKE_PID=$!
for _ in $(seq 100); do
  grep -q '^LISTENING ' "$WORK/fake.out" 2>/dev/null && break
  kill -0 "$FAKE_PID" 2>/dev/null || { echo "bench-teardown: the fake did not start:" >&2; cat "$WORK/fake.err" >&2; exit 1; }
  sleep 0.1
done
PORT=$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$WORK/fake.out")
[ -n "$PORT" ] || { echo "bench-teardown: the fake did not say its port" >&2; exit 1; }
CONTROL="http://127.0.0.1:$PORT/__fake"

# helper.py seed N LIVE | helper.py check N LIVE RUN_JSON WALL_S: both talk to the control API.
cat >"$WORK/helper.py" <<'PY'
import json, os, re, sys, time, urllib.request

control = sys.argv[1]

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(control + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"null")

def names(n, live):
    expired = ["bench-exp-%03d" % i for i in range(1, n + 1)]
    alive = ["bench-live-%d" % i for i in range(1, live + 1)]
    return expired, alive

def trial(name, expires):
    labels = {"munero-managed": "true", "munero-trial": name, "munero-expires": str(expires)}
    return ({"name": "munero-" + name, "labels": labels},
            {"name": "munero-" + name, "labels": labels, "rules": [
                {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["198.51.100.7/32"]}]},
            {"name": name, "labels": labels, "server_type": "cpx41", "location": "fsn1",
             "firewalls": ["munero-" + name], "ssh_keys": ["munero-" + name], "status": "running"})

# Resources no teardown may touch, whatever their names or expiry labels say.
DECOYS = {
    "servers": [{"name": "customer-prod", "labels": {}},
                {"name": "bench-exp-001-lookalike", "labels": {"munero-trial": "bench-exp-001", "munero-expires": "1000000000"}}],
    "firewalls": [{"name": "customer-fw", "labels": {"munero-expires": "1000000000"}, "rules": []},
                  {"name": "munero-unmanaged", "labels": {"munero-managed": "false", "munero-trial": "bench-exp-002",
                                                           "munero-expires": "1000000000"}, "rules": []}],
    "ssh_keys": [{"name": "customer-key", "labels": {}},
                 {"name": "munero-lookalike-key", "labels": {"munero-trial": "bench-exp-003", "munero-expires": "1000000000"}}],
}

def seed(n, live):
    now = int(time.time())
    expired, alive = names(n, live)
    body = {"ssh_keys": [], "firewalls": [], "servers": []}
    for name, expires in [(t, now - 3600) for t in expired] + [(t, now + 30 * 86400) for t in alive]:
        key, fw, srv = trial(name, expires)
        body["ssh_keys"].append(key)
        body["firewalls"].append(fw)
        body["servers"].append(srv)
    for kind, items in DECOYS.items():
        body[kind].extend(items)
    call("POST", "/reset", {})
    call("POST", "/seed", body)
    call("DELETE", "/requests")  # count only what the CLI sends

def check(n, live, run_json, wall):
    expired, alive = names(n, live)
    state = call("GET", "/state")
    have = {kind: sorted(r["name"] for r in state[kind]) for kind in ("servers", "firewalls", "ssh_keys")}
    want = {kind: sorted([d["name"] for d in DECOYS[kind]] +
                         [t if kind == "servers" else "munero-" + t for t in alive])
            for kind in have}
    requests = call("GET", "/requests")["requests"]
    by_method = {}
    for r in requests:
        by_method[r["method"]] = by_method.get(r["method"], 0) + 1
    try:
        with open(run_json) as fh:
            destroyed = len(json.load(fh).get("destroyed") or [])
    except (OSError, ValueError):
        destroyed = "?"
    latency = call("GET", "/config")["latency_ms"]
    split = " ".join("%s %d" % kv for kv in sorted(by_method.items()))
    print("| %6d | %10d | %8d | %12.1f | %8.1f | %9s | %-30s |" % (
        n, latency, len(requests), len(requests) / max(n, 1), wall, destroyed, split))
    problems = []
    for kind in have:
        gone = sorted(set(want[kind]) - set(have[kind]))
        left = sorted(set(have[kind]) - set(want[kind]))
        if gone:
            problems.append("%s that had to survive are gone: %s" % (kind, ", ".join(gone)))
        if left:
            problems.append("%s of expired trials are left: %s" % (kind, ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")))
    if destroyed != n:
        problems.append("the CLI reports %s destroyed, expected %d" % (destroyed, n))
    if os.environ.get("DETAIL") == "1":
        kinds = {}
        for r in requests:
            key = "%s %s%s" % (r["method"], re.sub(r"/\d+", "/{id}", r["path"]),
                               " ?label_selector" if "label_selector" in r["query"] else "")
            kinds[key] = kinds.get(key, 0) + 1
        for key, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print("    %5d  %s" % (count, key), file=sys.stderr)
    for p in problems:
        print("bench-teardown: %d trials: %s" % (n, p), file=sys.stderr)
    sys.exit(1 if problems else 0)

cmd = sys.argv[2]
if cmd == "seed":
    seed(int(sys.argv[3]), int(sys.argv[4]))
else:
    check(int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
PY

echo "teardown --expired against the Hetzner fake: $LATENCY_MS ms per API request, $LIVE live trials and 6 decoys beside the expired ones"
echo "binary: $BIN"
echo
echo "| trials | latency ms | requests | req. / trial | wall s | destroyed | by method                      |"
echo "| -----: | ---------: | -------: | -----------: | -----: | --------: | ------------------------------ |"
status=0
for n in $TRIALS; do
  python3 "$WORK/helper.py" "$CONTROL" seed "$n" "$LIVE"
  state="$WORK/state-$n"
  mkdir -p "$state" "$WORK/xdg-$n"
  t0=$(date +%s%N)
  set +e
  env HCLOUD_TOKEN=bench-token-not-secret HCLOUD_ENDPOINT="http://127.0.0.1:$PORT/v1" \
    MUNERO_STATE_DIR="$state" XDG_CONFIG_HOME="$WORK/xdg-$n/config" XDG_DATA_HOME="$WORK/xdg-$n/data" \
    ${POLL_MS:+MUNERO_POLL_MS="$POLL_MS"} \
    "$BIN" --output json teardown --expired >"$WORK/run-$n.json" 2>"$WORK/run-$n.err"
  rc=$?
  set -e
  t1=$(date +%s%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  if ! python3 "$WORK/helper.py" "$CONTROL" check "$n" "$LIVE" "$WORK/run-$n.json" "$wall"; then
    status=1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "bench-teardown: $n trials: munero-infra exited $rc; its stderr ends:" >&2
    tail -5 "$WORK/run-$n.err" >&2
    status=1
  fi
done
exit $status
