#!/usr/bin/env bash
# Self-healing on real processes: a `tusk namenode` and five `tusk datanode` processes on
# 127.0.0.1-5 in two racks, then, one after the other:
#   1. racks: every block of a replication-3 file spans both racks (fsck -racks, -printTopology)
#   2. a flipped byte in a replica: found by the block scanner, replaced, never served
#   3. a data directory taken away: the datanode keeps running, its replicas are copied again
#   4. kill -9 of a datanode while a reader reads: every block back at full replication
#   5. decommissioning through the exclude file and dfsadmin -refreshNodes
# Each step checks its outcome and the bytes of every file; the script exits non-zero at the
# first failure. State and logs in $WORK (default: a new temporary directory, kept on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=self-healing
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

cat > "$WORK/tusk.toml" <<EOF
[namenode]
heartbeat_expiry_ms = 8000
hosts_exclude = "$WORK/exclude"
racks = { "127.0.0.1" = "/r1", "127.0.0.2" = "/r1", "127.0.0.3" = "/r1", "127.0.0.4" = "/r2", "127.0.0.5" = "/r2" }

[datanode]
heartbeat_interval_ms = 500
scan_period_secs = 2
scan_bytes_per_sec = 0
failed_volumes_tolerated = 1
volume_check_interval_ms = 1000
EOF
: > "$WORK/exclude"
export TUSK_CONF="$WORK/tusk.toml"

start_namenode
declare -A DN_PID
start_dn() {
  local i=$1
  TUSK_DATANODE__ADVERTISE_HOST=127.0.0.$i "$TUSK" datanode --namenode "$NN" --xfer-address 127.0.0.$i:0 \
    --data-dir "$WORK/dn$i/v0" --data-dir "$WORK/dn$i/v1" > "$WORK/dn$i.out" 2> "$WORK/dn$i.log" &
  DN_PID[$i]=$!
  PIDS+=($!)
}
for i in 1 2 3 4 5; do start_dn "$i"; done
live() { "$TUSK" dfsadmin -report -live | grep -c "^Name: " || true; }
wait_for 30 "5 live datanodes" bash -c "[ \$('$TUSK' dfsadmin -report -live | grep -c '^Name: ') = 5 ]"

step "1. racks: put 4 files (1 MiB blocks, replication 3)"
for f in 1 2 3 4; do head -c $(( 3 * 1048576 + f * 1000 )) /dev/urandom > "$WORK/f$f"; done
"$TUSK" fs -mkdir /heal
for f in 1 2 3 4; do "$TUSK" fs -D dfs.blocksize=1m -put "$WORK/f$f" /heal/f$f; done
check_bytes() { for f in 1 2 3 4; do "$TUSK" fs -cat /heal/f$f | cmp -s - "$WORK/f$f" || return 1; done; }
check_bytes || fail "bytes differ after put"
"$TUSK" fsck /heal -files -blocks -racks > "$WORK/fsck-racks.txt"
blocks=$(grep -c "^[0-9]*\. blk_" "$WORK/fsck-racks.txt")
spanning=$(grep "^[0-9]*\. blk_" "$WORK/fsck-racks.txt" | grep "/r1/" | grep -c "/r2/" || true)
echo "   $spanning of $blocks blocks span both racks"
[ "$blocks" -gt 0 ] && [ "$spanning" = "$blocks" ] || fail "blocks on one rack: see $WORK/fsck-racks.txt"
"$TUSK" dfsadmin -printTopology | sed 's/^/   /'
healthy() { "$TUSK" fsck / > "$WORK/fsck.txt" 2>&1 && grep -q "Under-replicated blocks:	0 " "$WORK/fsck.txt" \
  && grep -q "Corrupt blocks:		0" "$WORK/fsck.txt" && grep -q "Missing blocks:		0" "$WORK/fsck.txt"; }

step "2. a flipped byte in a replica on datanode 1"
victim=$(find "$WORK/dn1" -path '*finalized*' -name 'blk_*' ! -name '*.meta' | head -1)
[ -n "$victim" ] || fail "datanode 1 holds no replica"
cp "$victim" "$WORK/victim.good"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$victim"
wait_for 60 "the scanner reported it" grep -q "block scanner found a corrupt replica" "$WORK/dn1.log"
wait_for 60 "a good copy replaced it" bash -c "cmp -s '$victim' '$WORK/victim.good' || ! grep -q . '$victim' 2>/dev/null"
wait_for 60 "fsck healthy" healthy
check_bytes || fail "bytes differ after the corrupt replica"

step "3. datanode 2 loses a data directory"
mv "$WORK/dn2/v1/current" "$WORK/dn2/v1/current.gone"
wait_for 30 "datanode 2 took it out of service" grep -q "data directory failed; taken out of service" "$WORK/dn2.log"
wait_for 60 "every block at full replication" healthy
kill -0 "${DN_PID[2]}" || fail "datanode 2 stopped"
[ "$(live)" = 5 ] || fail "datanode 2 is not live"
check_bytes || fail "bytes differ after the volume failure"

step "4. kill -9 datanode 5 while reading"
( while :; do check_bytes || { echo READ-FAILED > "$WORK/reader.fail"; break; }; done ) & READER=$!
PIDS+=($READER)
kill -9 "${DN_PID[5]}"
t_kill=$SECONDS
wait_for 60 "datanode 5 declared dead" bash -c "'$TUSK' dfsadmin -report -dead | grep -q '^Name: 127.0.0.5:'"
wait_for 60 "every block back at 3 live replicas" healthy
echo "   $(( SECONDS - t_kill ))s from the kill"
kill "$READER" 2>/dev/null || true
[ ! -e "$WORK/reader.fail" ] || fail "a reader saw an error or wrong bytes"
check_bytes || fail "bytes differ after the kill"

step "5. decommission datanode 4"
addr=$("$TUSK" dfsadmin -report -live | sed -n 's/^Name: \(127\.0\.0\.4:[0-9]*\) .*/\1/p')
echo "$addr" > "$WORK/exclude"
"$TUSK" dfsadmin -refreshNodes
wait_for 90 "datanode 4 decommissioned" bash -c "'$TUSK' dfsadmin -report -live | grep -A4 '^Name: $addr' | grep -q 'Decommission Status : Decommissioned'"
wait_for 30 "every block at full replication" healthy
check_bytes || fail "bytes differ after decommissioning"
"$TUSK" dfsadmin -printTopology | sed 's/^/   /'

echo
echo "self-healing: all steps passed (state and logs in $WORK)"
