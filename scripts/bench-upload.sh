#!/usr/bin/env bash
# Upload benchmark: the same file to the same local OpenSSH sshd (127.0.0.1) with munero-infra
# (`deploy --only upload-data`: SFTP pipelined writes + sha256 verify on the host + rename),
# scp and sftp; RUNS runs each; prints MB/s per run, the median, and the ratio to scp.
#
#   scripts/bench-upload.sh            (2 GiB, 3 runs; builds the release binary)
#   SIZE_MIB=512 RUNS=5 MUNERO_BIN=target/debug/munero-infra scripts/bench-upload.sh
#
# munero-infra's figure is for the whole command (local hash is cached after the first run, the
# remote sha256sum is included); the transfer-only rate it prints itself is shown beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-2048}
RUNS=${RUNS:-3}

bash scripts/setup/sshd.sh >/dev/null
if [ -z "${MUNERO_BIN:-}" ]; then
  cargo build --release --quiet --bin munero-infra
  MUNERO_BIN="${CARGO_TARGET_DIR:-target}/release/munero-infra"
fi

work=$(mktemp -d /tmp/munero-bench.XXXXXX)
sshd_pid=
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$work/client_key"
cp "$work/client_key.pub" "$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=$(id -un)
sftp_server=/usr/lib/openssh/sftp-server
cat >"$work/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
LogLevel FATAL
Subsystem sftp $sftp_server
EOF
/usr/sbin/sshd -D -e -f "$work/sshd_config" -p "$port" &
sshd_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/known_hosts"
ssh_opts=(-o "UserKnownHostsFile=$work/known_hosts" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i "$work/client_key" -o LogLevel=ERROR)

echo "generating a ${SIZE_MIB} MiB file of random data"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$work/data.bin"
bytes=$(stat -c %s "$work/data.bin")
remote="$work/remote"
mkdir -p "$remote"

state="$work/state"
"$MUNERO_BIN" --state-dir "$state" create bench --provider ssh --host 127.0.0.1 --port "$port" --user "$user" \
  --identity "$work/client_key" --host-key "$work/host_key.pub" --remote-dir "$remote/munero" >/dev/null 2>&1

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{$bytes/($2-$1)/1e6:.1f}')" "$@"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a m s f mt
echo "host: $(nproc) cores; sshd: $(/usr/sbin/sshd -V 2>&1 | head -n1); file: $bytes bytes; runs: $RUNS"
for i in $(seq 1 "$RUNS"); do
  rm -rf "$remote/munero/data"
  t0=$(now)
  out=$("$MUNERO_BIN" --state-dir "$state" deploy bench --data "$work/data.bin" --only upload-data 2>&1)
  t1=$(now)
  m+=("$(rate "$t0" "$t1")")
  mt+=("$(grep -o '([0-9.]* MB/s)' <<<"$out" | tr -d '()' | cut -d' ' -f1 || echo '?')")

  rm -f "$remote/scp.bin"
  t0=$(now); scp -q "${ssh_opts[@]}" -P "$port" "$work/data.bin" "$user@127.0.0.1:$remote/scp.bin"; t1=$(now)
  s+=("$(rate "$t0" "$t1")")

  rm -f "$remote/sftp.bin"
  t0=$(now)
  sftp -q "${ssh_opts[@]}" -P "$port" -b - "$user@127.0.0.1" >/dev/null <<<"put $work/data.bin $remote/sftp.bin"
  t1=$(now)
  f+=("$(rate "$t0" "$t1")")
  echo "run $i: munero-infra ${m[-1]} MB/s (transfer phase ${mt[-1]} MB/s), scp ${s[-1]} MB/s, sftp ${f[-1]} MB/s"
done
mm=$(median "${m[@]}"); ms=$(median "${s[@]}"); mf=$(median "${f[@]}"); mmt=$(median "${mt[@]}")
echo "median: munero-infra $mm MB/s (transfer phase $mmt MB/s), scp $ms MB/s, sftp $mf MB/s"
python3 - "$mm" "$mmt" "$ms" "$mf" <<'EOF'
import sys
m, mt, s, f = (float(x) for x in sys.argv[1:])
print(f"ratio to scp: munero-infra {m/s:.2f}x (transfer phase {mt/s:.2f}x), sftp {f/s:.2f}x")
EOF
