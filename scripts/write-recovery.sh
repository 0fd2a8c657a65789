#!/usr/bin/env bash
# Writes that survive failures, on real processes: a `tusk namenode` and four `tusk datanode`
# processes on 127.0.0.1-4, then, one after the other:
#   1. kill -9 of the first datanode of the pipeline in the middle of a 1 GiB -put: the put
#      succeeds, the file is identical, every block returns to 3 live replicas
#   2. a client killed (kill -9) in the middle of a write; `tusk debug recoverLease` closes
#      the file at its last acknowledged length, and it reads back those bytes
#   3. the same without anyone's help: the namenode's lease hard limit (10 s here) closes it
#   4. -appendToFile twice: the file is the concatenation
#   5. a reader started after an hflush sees the flushed bytes of a file still being written
# Each step checks its outcome; the script exits non-zero at the first failure. State and
# logs in $WORK (default: a new temporary directory). BIG_MB sets the size of step 1's file.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=write-recovery
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
HFLUSH="${HFLUSH:-$CARGO_TARGET_DIR/release/examples/hflush}"
BIG_MB="${BIG_MB:-1024}"
[ -x "$HFLUSH" ] || { echo "build first: cargo build --release --workspace --all-targets" >&2; exit 1; }

cat > "$WORK/tusk.toml" <<EOF
[namenode]
heartbeat_expiry_ms = 8000
lease_soft_limit_ms = 2000
lease_hard_limit_ms = 10000

[datanode]
heartbeat_interval_ms = 500
EOF
export TUSK_CONF="$WORK/tusk.toml"

start_namenode
declare -A DN_PID
for i in 1 2 3 4; do
  TUSK_DATANODE__ADVERTISE_HOST=127.0.0.$i "$TUSK" datanode --namenode "$NN" --xfer-address 127.0.0.$i:0 \
    --data-dir "$WORK/dn$i" > "$WORK/dn$i.out" 2> "$WORK/dn$i.log" &
  DN_PID[$i]=$!
  PIDS+=($!)
done
wait_for 30 "4 live datanodes" bash -c "[ \$('$TUSK' dfsadmin -report -live | grep -c '^Name: ') = 4 ]"
healthy() { "$TUSK" fsck / > "$WORK/fsck.txt" 2>&1 && grep -q "Under-replicated blocks:	0 " "$WORK/fsck.txt" \
  && grep -q "Missing blocks:		0" "$WORK/fsck.txt"; }

step "1. kill -9 the pipeline's first datanode during a ${BIG_MB} MiB put"
head -c $(( BIG_MB * 1048576 + 4321 )) /dev/urandom > "$WORK/big"
# The client runs on 127.0.0.1: datanode 1, on the writer's host, heads every pipeline.
t_put=$SECONDS
"$TUSK" fs -D dfs.blocksize=64m -put "$WORK/big" /big 2> "$WORK/put.err" & PUT=$!
wait_for 60 "the put is under way" bash -c "ls '$WORK'/dn1/current/rbw/blk_* 2>/dev/null | grep -q ."
sleep 2
kill -9 "${DN_PID[1]}"
echo "   killed datanode 1 mid-write"
wait "$PUT" || fail "the put failed: $(cat "$WORK/put.err")"
echo "   the put succeeded in $(( SECONDS - t_put ))s"
grep -c "pipeline failed" "$WORK/put.err" | sed 's/^/   pipeline recoveries logged by the client: /' || true
grep -c "datanode added to the pipeline" "$WORK/put.err" | sed 's/^/   replacement datanodes added: /' || true
# Reads try datanode 1 first (the reader's host) until it is declared dead: failovers are logged.
"$TUSK" fs -cat /big 2> "$WORK/cat.err" | cmp - "$WORK/big" || fail "/big differs from what was put"
echo "   /big is identical ($(stat -c %s "$WORK/big") bytes)"
wait_for 60 "datanode 1 declared dead" bash -c "'$TUSK' dfsadmin -report -dead | grep -q '^Name: 127.0.0.1:'"
wait_for 120 "every block of /big back at 3 live replicas" healthy
rm -f "$WORK/big"

# Three unfinished replicas of at least 4,900,000 bytes (what a client sent of 5,000,000) on
# the live datanodes (datanode 1 was killed in step 1).
sent_to_three() {
  [ "$(find "$WORK"/dn[234]/current/rbw -name 'blk_*' ! -name '*.meta' -size +4785k 2>/dev/null | wc -l)" -ge 3 ]
}

step "2. a client killed mid-write; tusk debug recoverLease"
head -c 5000000 /dev/urandom > "$WORK/part"
# The client gets 5 MB, then nothing more: all but its last partial packet is acknowledged.
( cat "$WORK/part"; sleep 600 ) | "$TUSK" fs -put - /orphan 2> "$WORK/orphan.err" & ORPHAN=$!
wait_for 30 "the writer has sent its bytes to 3 datanodes" sent_to_three
pkill -9 -f "fs -put - /orphan" || true
kill "$ORPHAN" 2>/dev/null || true
sleep 3
"$TUSK" debug recoverLease -path /orphan._COPYING_ -retries 5 | tee "$WORK/recover.out" | sed 's/^/   /'
grep -q "recoverLease SUCCEEDED on /orphan._COPYING_" "$WORK/recover.out" || fail "recoverLease did not succeed"
len=$("$TUSK" fs -stat %b /orphan._COPYING_)
echo "   closed at $len bytes of the 5000000 sent"
(( len >= 5000000 - 65536 && len <= 5000000 )) || fail "closed at $len bytes"
"$TUSK" fs -cat /orphan._COPYING_ | cmp - <(head -c "$len" "$WORK/part") || fail "the recovered bytes differ"

step "3. a client killed mid-write; the hard limit (10 s) closes the file by itself"
( cat "$WORK/part"; sleep 600 ) | "$TUSK" fs -put - /orphan2 2> "$WORK/orphan2.err" & ORPHAN=$!
wait_for 30 "the writer has sent its bytes to 3 datanodes" sent_to_three
pkill -9 -f "fs -put - /orphan2" || true
kill "$ORPHAN" 2>/dev/null || true
wait_for 60 "the namenode recovered the lease" grep -q "lease recovered: file closed path=/orphan2._COPYING_" "$WORK/nn.log"
len=$("$TUSK" fs -stat %b /orphan2._COPYING_)
echo "   closed at $len bytes"
(( len >= 5000000 - 65536 && len <= 5000000 )) || fail "closed at $len bytes"
"$TUSK" fs -cat /orphan2._COPYING_ | cmp - <(head -c "$len" "$WORK/part") || fail "the recovered bytes differ"

step "4. -appendToFile twice"
head -c 1000003 /dev/urandom > "$WORK/a"; head -c 777 /dev/urandom > "$WORK/b"; head -c 2097251 /dev/urandom > "$WORK/c"
"$TUSK" fs -D dfs.blocksize=1m -put "$WORK/a" /log
"$TUSK" fs -appendToFile "$WORK/b" /log
"$TUSK" fs -appendToFile "$WORK/c" /log
"$TUSK" fs -cat /log | cmp - <(cat "$WORK/a" "$WORK/b" "$WORK/c") || fail "/log is not a+b+c"
echo "   /log = a + b + c ($("$TUSK" fs -stat %b /log) bytes)"

step "5. a reader after hflush"
head -c 3000001 /dev/urandom > "$WORK/live"
mkfifo "$WORK/hold"
"$HFLUSH" "$NN" /live "$WORK/live" < "$WORK/hold" > "$WORK/hflush.out" 2>&1 & WRITER=$!
exec 9> "$WORK/hold"
wait_for 30 "the writer flushed" grep -q "^flushed 3000001" "$WORK/hflush.out"
"$TUSK" fs -cat /live | cmp - "$WORK/live" || fail "a new reader does not see the flushed bytes"
echo "   a new reader sees all 3000001 flushed bytes of the open file"
exec 9>&-
wait "$WRITER" || fail "the writer failed: $(cat "$WORK/hflush.out")"
grep -q "^closed 3000001" "$WORK/hflush.out" || fail "the writer did not close"
"$TUSK" fs -cat /live | cmp - "$WORK/live" || fail "/live differs after close"

echo
echo "all write-recovery steps passed"
