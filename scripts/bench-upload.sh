#!/usr/bin/env bash
# Upload benchmark over a shaped link: the realistic sales database from the bundled generator,
# sent to an OpenSSH sshd in a network namespace behind a veth pair shaped with `tc tbf`, by
# scp, `rsync -z -t` (times kept, so its quick check can skip an unchanged file) and
# munero-infra (`deploy --only upload-data`), for three cases:
#   first   the host holds nothing,
#   change  the host holds the file and 1% of its pages changed here (scattered updates),
#   same    the host already holds this very file.
# RUNS runs of each (the first uploads take turns going first: 3 runs give each tool each place
# once); prints one table of medians (seconds, MB that crossed the veth both ways)
# and the time ratios to scp and to rsync.
#
#   scripts/bench-upload.sh                               (700M and 2G at 100mbit and 20mbit)
#   SIZES=700M RATES=100mbit RUNS=3 scripts/bench-upload.sh
#   RATES=unshaped SIZES=700M scripts/bench-upload.sh       (the veth without tbf)
#   TOOLS=ours VERBOSE=1 MUNERO_LOG=munero_infra=debug RUNS=1 SIZES=700M RATES=100mbit ...
#
# The generated files are cached in ${MUNERO_CACHE:-/var/tmp}/munero-bench. scp does not look at
# what the host holds, so its `change` and `same` rows repeat its `first` measurement of the
# same run (SCP_ALL_CASES=1 measures them too). tbf shapes rate only: this kernel has no netem,
# so the link adds no latency. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"700M 2G"}
RATES=${RATES:-"100mbit 20mbit"}
RUNS=${RUNS:-3}
SCP_ALL_CASES=${SCP_ALL_CASES:-0}
TOOLS=${TOOLS:-"scp rsync ours"}
CACHE=${MUNERO_CACHE:-/var/tmp}/munero-bench
log() { printf '[bench] %s\n' "$*" >&2; }

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v zstd >/dev/null || need+=(zstd)
command -v tc >/dev/null && command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup/sshd.sh >/dev/null
if [ -z "${MUNERO_BIN:-}" ]; then
  cargo build --release --quiet --bin munero-infra
  MUNERO_BIN="${CARGO_TARGET_DIR:-target}/release/munero-infra"
fi

# ---- data: generated once per size, then a copy with 1% of its pages changed ---------------
rows_for() { case "$1" in 700M) echo 6300000 ;; 2G) echo 18000000 ;; *) echo "unknown size $1 (700M or 2G)" >&2; exit 2 ;; esac; }
mkdir -p "$CACHE"
for size in $SIZES; do
  rows=$(rows_for "$size")
  base="$CACHE/sales-$rows.sqlite"
  if [ ! -f "$base" ]; then
    log "generating $base ($rows orders; once, then cached)"
    python3 backend/scripts/make_sample_db.py --rows "$rows" --seed 42 --end 2025-12-31 --out "$base"
  fi
  if [ ! -f "$base.changed" ] || [ "$base.changed" -ot "$base" ]; then
    log "changing 1% of the pages of a copy -> $base.changed"
    cp "$base" "$base.changed.tmp"
    python3 - "$base" "$base.changed.tmp" <<'EOF'
import sqlite3, sys
old, new = sys.argv[1], sys.argv[2]
c = sqlite3.connect(new)
page = c.execute("PRAGMA page_size").fetchone()[0]
n = c.execute("SELECT count(*) FROM orders").fetchone()[0]
# Scattered single-row updates: each lands on its own page, spread over the whole table.
pages = c.execute("PRAGMA page_count").fetchone()[0]
step = max(1, n // (pages // 100))
c.execute("UPDATE orders SET amount = round(amount * 1.01, 2) WHERE rowid % ? = 0", (step,))
c.commit(); c.close()
a, b = open(old, "rb"), open(new, "rb")
changed = total = 0
while True:
    x, y = a.read(page), b.read(page)
    if not x and not y: break
    total += 1; changed += x != y
print(f"[bench] {changed} of {total} pages changed ({100 * changed / total:.2f}%)", file=sys.stderr)
EOF
    mv "$base.changed.tmp" "$base.changed"
  fi
done

# ---- the link: a namespace with sshd, a veth pair, tbf on both ends ------------------------
ns=munero-bench-$$
hv=mbh$$ nv=mbn$$
work=$(mktemp -d /tmp/munero-bench.XXXXXX)
sshd_pid=
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  ip link del "$hv" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "$hv" type veth peer name "$nv"
ip link set "$nv" netns "$ns"
ip addr add 10.213.7.1/30 dev "$hv"
ip link set "$hv" up
ip netns exec "$ns" ip addr add 10.213.7.2/30 dev "$nv"
ip netns exec "$ns" ip link set "$nv" up
ip netns exec "$ns" ip link set lo up
host=10.213.7.2
shape() {
  if [ "$1" = unshaped ]; then
    tc qdisc del dev "$hv" root 2>/dev/null || true
    ip netns exec "$ns" tc qdisc del dev "$nv" root 2>/dev/null || true
  else
    tc qdisc replace dev "$hv" root tbf rate "$1" burst 32kbit latency 400ms
    ip netns exec "$ns" tc qdisc replace dev "$nv" root tbf rate "$1" burst 32kbit latency 400ms
  fi
}

ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
# The host side logs in as a plain user with /bin/sh, as on a trial host: root's shell here may
# start a version manager's shims for every command, which no trial host has.
user=munero-bench
id "$user" >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/sh -p "*" "$user"  # "*": no password, not locked
cat >"$work/sshd_config" <<EOF
ListenAddress $host
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
LogLevel FATAL
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
ip netns exec "$ns" /usr/sbin/sshd -D -e -f "$work/sshd_config" -p 22 &
sshd_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/$host/22") 2>/dev/null && break; sleep 0.1; done
echo "$host $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/known_hosts"
ssh_cmd="ssh -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i $work/client_key -o LogLevel=ERROR"
remote="$work/remote"
mkdir -p "$remote"
chmod 755 "$work"
chown "$user" "$remote"
state="$work/state"
"$MUNERO_BIN" --state-dir "$state" create bench --provider ssh --host "$host" --port 22 --user "$user" \
  --identity "$work/client_key" --host-key "$work/host_key.pub" --remote-dir "$remote/munero" >/dev/null

# ---- one measurement: seconds and bytes over the veth (both ways) ---------------------------
stat_bytes() { echo $(($(cat "/sys/class/net/$hv/statistics/tx_bytes") + $(cat "/sys/class/net/$hv/statistics/rx_bytes"))); }
results="$work/results.tsv"
measure() { # size rate case tool run -- command...
  local key="$1 $2 $3 $4" b0 b1 t0 t1
  case " $TOOLS " in *" $4 "*) ;; *) return 0 ;; esac
  shift 5
  sync
  b0=$(stat_bytes); t0=$(date +%s.%N)
  "$@" >"$work/out.log" 2>&1 || { log "FAILED: $key: $*"; cat "$work/out.log" >&2; exit 1; }
  t1=$(date +%s.%N); b1=$(stat_bytes)
  printf '%s\t%s\t%s\n' "$key" "$(echo "$t1 - $t0" | bc -l)" "$((b1 - b0))" >>"$results"
  [ -n "${VERBOSE:-}" ] && cat "$work/out.log" >&2 || true
}
ours() { "$MUNERO_BIN" --state-dir "$state" deploy bench --data "$1" --only upload-data; }
scp_to() { scp -q -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
  -i "$work/client_key" -o LogLevel=ERROR "$1" "$user@$host:$2"; }
rsync_to() { rsync -z -t -e "$ssh_cmd" "$1" "$user@$host:$2"; }

FIRST_ORDER=(scp rsync ours)
command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }
log "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(/usr/sbin/sshd -V 2>&1 | head -n1); $(rsync --version | head -n1); runs: $RUNS"
for size in $SIZES; do
  base="$CACHE/sales-$(rows_for "$size").sqlite"
  for rate in $RATES; do
    shape "$rate"
    for run in $(seq 1 "$RUNS"); do
      log "$size at $rate, run $run/$RUNS"
      # Copies with fresh mtimes, so rsync's quick check cannot skip the change.
      cp "$base" "$work/data.sqlite"; cp "$base.changed" "$work/changed.sqlite"
      # Each tool's copy on the host is removed just before its first upload, and the order
      # turns with each run: the tool that writes right after the removal writes into memory
      # just freed, the next ones do not, and on this VM that alone made 2 GB take up to 1.8x
      # longer (scp: 7.7 s measured first, 14.3 s third; ours: 8.1 s and 14.9 s).
      for i in 0 1 2; do
        case ${FIRST_ORDER[$(((i + run - 1) % 3))]} in
          scp) rm -f "$remote/scp.sqlite"
               measure "$size" "$rate" first scp "$run" scp_to "$work/data.sqlite" "$remote/scp.sqlite" ;;
          rsync) rm -f "$remote/rsync.sqlite"
               measure "$size" "$rate" first rsync "$run" rsync_to "$work/data.sqlite" "$remote/rsync.sqlite" ;;
          ours) rm -rf "$remote/munero/data"
               measure "$size" "$rate" first ours "$run" ours "$work/data.sqlite" ;;
        esac
      done
      if [ "$SCP_ALL_CASES" = 1 ]; then
        measure "$size" "$rate" change scp "$run" scp_to "$work/changed.sqlite" "$remote/scp.sqlite"
      fi
      measure "$size" "$rate" change rsync "$run" rsync_to "$work/changed.sqlite" "$remote/rsync.sqlite"
      measure "$size" "$rate" change ours "$run" ours "$work/changed.sqlite"
      if [ "$SCP_ALL_CASES" = 1 ]; then
        measure "$size" "$rate" same scp "$run" scp_to "$work/changed.sqlite" "$remote/scp.sqlite"
      fi
      measure "$size" "$rate" same rsync "$run" rsync_to "$work/changed.sqlite" "$remote/rsync.sqlite"
      measure "$size" "$rate" same ours "$run" ours "$work/changed.sqlite"
      if [[ " $TOOLS " == *" ours "* ]] && ! cmp -s "$remote/munero/data/client.sqlite" "$work/changed.sqlite"; then
        log "the host's copy differs"; exit 1
      fi
    done
  done
done

python3 - "$results" "$SCP_ALL_CASES" "$SIZES" "$RATES" <<'EOF'
import statistics, sys
path, scp_all, sizes, rates = sys.argv[1], sys.argv[2] == "1", sys.argv[3].split(), sys.argv[4].split()
runs = {}
for line in open(path):
    key, secs, nbytes = line.rstrip("\n").split("\t")
    runs.setdefault(tuple(key.split()), []).append((float(secs), int(nbytes)))
def med(k):
    if k not in runs and not scp_all and k[3] == "scp":
        k = (k[0], k[1], "first", "scp")
    v = runs.get(k)
    return (statistics.median(s for s, _ in v), statistics.median(b for _, b in v) / 1e6) if v else None
print(f"{'size':<5} {'link':<9} {'case':<7} {'tool':<6} {'time s':>8} {'MB wire':>9} {'x scp':>7} {'x rsync':>8}")
for size in sizes:
    for rate in rates:
        for case in ("first", "change", "same"):
            scp, rsync = med((size, rate, case, "scp")), med((size, rate, case, "rsync"))
            for tool in ("scp", "rsync", "ours"):
                m = med((size, rate, case, tool))
                if not m:
                    continue
                xs = f"{m[0] / scp[0]:.2f}" if scp else "-"
                xr = f"{m[0] / rsync[0]:.2f}" if rsync and rsync[0] > 0 else "-"
                print(f"{size:<5} {rate:<9} {case:<7} {tool:<6} {m[0]:>8.2f} {m[1]:>9.1f} {xs:>7} {xr:>8}")
print("medians of the runs; MB wire: bytes over the veth both ways (SSH framing and TCP/IP included);"
      " x scp / x rsync: time ratio." + ("" if scp_all else " scp sends the whole file whatever the host holds: its change/same rows repeat its first."))
EOF
