#!/usr/bin/env bash
# FUSE throughput on the pseudo-cluster (`tusk cluster up`: 3 datanodes, replication 3):
#
#   1. sequential read of one SIZE_MB (2048) MiB file: `tusk fs -cat` to /dev/null, and `dd`
#      through the mount (`tusk mount`), interleaved, RUNS (3) times each; the ratio of the
#      medians (target: the mount at least 70% of -cat);
#   2. 4 concurrent readers of 4 different files of SIZE4_MB (512) MiB through the mount,
#      against one reader of one of them: total MB/s (target: 4 readers > 1).
#
# The kernel's page cache is dropped before every read through the mount (FUSE caches file
# pages), so every figure reads from the datanodes. Prints a table and appends it, with the
# machine, date and commit, to REPORT (docs/benchmarks.md; REPORT= to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=fuse-bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
RUNS="${RUNS:-3}"
SIZE_MB="${SIZE_MB:-2048}"
SIZE4_MB="${SIZE4_MB:-512}"
REPORT="${REPORT-docs/benchmarks.md}"
PORT="${PORT:-9341}"

start_cluster "$PORT"
MNT="$WORK/mnt"
mkdir -p "$MNT"
"$TUSK" mount "$MNT" --daemon --log "$WORK/mount.log"
PIDS+=("$(pgrep -f "tusk mount $MNT" | head -1)")
trap 'st=$?; fusermount3 -u -z "$MNT" 2>/dev/null || true; cleanup $st' EXIT

now() { date +%s.%N; }
mbps() { echo "$1 $2 $3" | awk '{ printf "%.0f\n", $1 / ($2 - $3) }'; } # MB, end, start
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

step "write the files"
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/big"
"$TUSK" fs -put "$WORK/big" /big
for i in 1 2 3 4; do head -c $((SIZE4_MB << 20)) "$WORK/big" > "$WORK/f$i"; echo "$i" >> "$WORK/f$i"; "$TUSK" fs -put "$WORK/f$i" "/f$i"; rm "$WORK/f$i"; done
cmp <(dd if="$MNT/big" bs=1M status=none) "$WORK/big" || fail "the file read through the mount differs"
rm "$WORK/big"
echo "   /big ${SIZE_MB} MiB and /f1../f4 ${SIZE4_MB} MiB; /big read through the mount is identical"

step "1. sequential read, $RUNS runs each, interleaved"
for r in $(seq "$RUNS"); do
  drop_caches; t=$(now); "$TUSK" fs -cat /big > /dev/null; e=$(now); mbps "$SIZE_MB" "$e" "$t" >> "$WORK/cat"
  drop_caches; t=$(now); dd if="$MNT/big" of=/dev/null bs=1M status=none; e=$(now); mbps "$SIZE_MB" "$e" "$t" >> "$WORK/mount"
  echo "   run $r: -cat $(tail -1 "$WORK/cat") MiB/s, mount $(tail -1 "$WORK/mount") MiB/s"
done
CAT=$(median < "$WORK/cat"); MOUNT=$(median < "$WORK/mount")
RATIO=$(echo "$MOUNT $CAT" | awk '{ printf "%.0f", 100 * $1 / $2 }')
# The median of the runs' own ratios (each pair ran back to back).
RUN_RATIO=$(paste "$WORK/mount" "$WORK/cat" | awk '{ printf "%.0f\n", 100 * $1 / $2 }' | median)

step "2. one reader against 4 concurrent readers, $RUNS runs each"
for r in $(seq "$RUNS"); do
  drop_caches; t=$(now); dd if="$MNT/f1" of=/dev/null bs=1M status=none; e=$(now); mbps "$SIZE4_MB" "$e" "$t" >> "$WORK/one"
  drop_caches; t=$(now)
  readers=()
  for i in 1 2 3 4; do dd if="$MNT/f$i" of=/dev/null bs=1M status=none & readers+=($!); done
  wait "${readers[@]}"
  e=$(now); mbps $((4 * SIZE4_MB)) "$e" "$t" >> "$WORK/four"
  echo "   run $r: one $(tail -1 "$WORK/one") MiB/s, four $(tail -1 "$WORK/four") MiB/s in all"
done
ONE=$(median < "$WORK/one"); FOUR=$(median < "$WORK/four")
RUN_FOUR=$(paste "$WORK/four" "$WORK/one" | awk '{ printf "%.0f\n", 100 * $1 / $2 }' | median)

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
table=$(cat <<TABLE
### fuse, $(date -u '+%Y-%m-%d %H:%M') UTC — commit $commit, $(nproc) cores ($cpu), binary \`${TUSK#"$HOME"/}\`

Pseudo-cluster on one machine (3 datanodes, replication 3), page cache dropped before each read.
Median of $RUNS interleaved runs.

| benchmark | figure |
|---|---|
| \`tusk fs -cat\` of ${SIZE_MB} MiB to /dev/null | $CAT MiB/s |
| \`dd bs=1M\` of the same file through \`tusk mount\` | $MOUNT MiB/s (**$RATIO%** of -cat; median of the runs' ratios $RUN_RATIO%; target 70%) |
| one reader of a ${SIZE4_MB} MiB file through the mount | $ONE MiB/s |
| 4 concurrent readers of 4 such files through the mount | $FOUR MiB/s in all (median of the runs' ratios to one reader: $RUN_FOUR%; target > 100%) |
TABLE
)
echo
echo "$table"
if [ -n "$REPORT" ]; then
  printf '\n%s\n' "$table" >> "$REPORT"
  echo; echo "appended to $REPORT"
fi
