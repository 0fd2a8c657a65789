#!/usr/bin/env bash
# MapReduce benchmarks on the pseudo-cluster (`tusk cluster up`: a namenode, 3 datanodes, a
# jobtracker and a tasktracker beside each datanode, all on this machine):
#
#   1. submit-to-done of a job on an empty input: map-only, and with one reduce (RUNS times);
#   2. wordcount over WC_MB MiB (1024) of text, RUNS times: total, map phase, reduce phase;
#   3. teragen TERA_ROWS rows (10,000,000 = 1 GB), terasort (-r REDUCES) and teravalidate
#      (against the teragen output), RUNS times each.
#
# Every figure is the median of RUNS (3) runs. Prints a table and appends it, with the
# machine, date and commit, to REPORT (docs/benchmarks.md; REPORT= to skip).
#
#   bash bench/mapreduce.sh                      # everything, ~20 minutes on 2 cores
#   RUNS=1 WC_MB=100 TERA_ROWS=1000000 bash bench/mapreduce.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=mr-bench
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
RUNS="${RUNS:-3}"
WC_MB="${WC_MB:-1024}"
TERA_ROWS="${TERA_ROWS:-10000000}"
REDUCES="${REDUCES:-3}"
REPORT="${REPORT-docs/benchmarks.md}"
PORT="${PORT:-9331}"

start_cluster "$PORT"
sleep 2 # the trackers' first heartbeats

# median of the numbers on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
# seconds between two `now`s
since() { echo "$(now) $1" | awk '{ printf "%.2f\n", $1 - $2 }'; }
# a phase line's seconds from a job's output: phase "Map phase" FILE
phase() { sed -n "s/^$1: \([0-9.]*\)s$/\1/p" "$2" | tail -1; }
run_job() { # run_job OUTFILE ARGS...: runs a job, fails the bench when it fails
  local out=$1; shift
  "$TUSK" job run "$@" > "$out" 2>&1 || { cat "$out" >&2; fail "job $*"; }
}

declare -A R
step "1. an empty job, submit to done ($RUNS runs each)"
"$TUSK" fs -touchz /empty.txt
for i in $(seq "$RUNS"); do
  t=$(now); run_job "$WORK/empty-m$i" identity /empty.txt "/empty-m$i" -r 0; echo "$(since "$t")" >> "$WORK/empty-m"
  t=$(now); run_job "$WORK/empty-r$i" identity /empty.txt "/empty-r$i" -r 1; echo "$(since "$t")" >> "$WORK/empty-r"
  phase Elapsed "$WORK/empty-r$i" >> "$WORK/empty-r-jt"
done
R[empty_m]=$(median < "$WORK/empty-m"); R[empty_r]=$(median < "$WORK/empty-r"); R[empty_r_jt]=$(median < "$WORK/empty-r-jt")
echo "   map-only: ${R[empty_m]}s, one reduce: ${R[empty_r]}s (jobtracker's own: ${R[empty_r_jt]}s) — whole \`tusk job run\` processes"

step "2. wordcount over $WC_MB MiB ($RUNS runs)"
python3 scripts/gen-text.py "$WORK/text" $(( WC_MB << 20 ))
t=$(now); "$TUSK" fs -put "$WORK/text" /wc-in.txt; R[wc_put]=$(since "$t")
R[wc_bytes]=$(stat -c %s "$WORK/text")
rm -f "$WORK/text"
for i in $(seq "$RUNS"); do
  t=$(now); run_job "$WORK/wc$i" wordcount /wc-in.txt "/wc-out$i" -r "$REDUCES"; since "$t" >> "$WORK/wc-total"
  phase "Map phase" "$WORK/wc$i" >> "$WORK/wc-map"; phase "Reduce phase" "$WORK/wc$i" >> "$WORK/wc-reduce"
  sed -n 's/^\tLAUNCHED_MAPS=//p' "$WORK/wc$i" >> "$WORK/wc-maps"; sed -n 's/^\tDATA_LOCAL_MAPS=//p' "$WORK/wc$i" >> "$WORK/wc-local"
done
R[wc_total]=$(median < "$WORK/wc-total"); R[wc_map]=$(median < "$WORK/wc-map"); R[wc_reduce]=$(median < "$WORK/wc-reduce")
R[wc_maps]=$(tail -1 "$WORK/wc-maps"); R[wc_local]=$(tail -1 "$WORK/wc-local")
echo "   total ${R[wc_total]}s (map ${R[wc_map]}s, reduce ${R[wc_reduce]}s); ${R[wc_local]:-0} of ${R[wc_maps]} maps node-local"

step "3. teragen $TERA_ROWS rows, terasort -r $REDUCES, teravalidate ($RUNS runs)"
for i in $(seq "$RUNS"); do
  t=$(now); run_job "$WORK/gen$i" teragen "$TERA_ROWS" "/tera-in$i"; since "$t" >> "$WORK/teragen"
  t=$(now); run_job "$WORK/sort$i" terasort "/tera-in$i" "/tera-out$i" -r "$REDUCES"; since "$t" >> "$WORK/terasort"
  phase "Map phase" "$WORK/sort$i" >> "$WORK/terasort-map"; phase "Reduce phase" "$WORK/sort$i" >> "$WORK/terasort-reduce"
  t=$(now); run_job "$WORK/val$i" teravalidate "/tera-out$i" "/tera-in$i" "/tera-report$i"; since "$t" >> "$WORK/teravalidate"
  grep -q "sorted and complete" "$WORK/val$i" || fail "teravalidate did not pass: $(cat "$WORK/val$i")"
  "$TUSK" fs -rm -r -skipTrash "/tera-in$i" "/tera-out$i" > /dev/null
done
for k in teragen terasort terasort-map terasort-reduce teravalidate; do R[$k]=$(median < "$WORK/$k"); done
tera_mb=$(( TERA_ROWS * 100 / 1000000 ))
echo "   teragen ${R[teragen]}s, terasort ${R[terasort]}s (map ${R[terasort-map]}s, reduce ${R[terasort-reduce]}s), teravalidate ${R[teravalidate]}s"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
table=$(cat <<TABLE
### mapreduce, $(date -u '+%Y-%m-%d %H:%M') UTC — commit $commit, $(nproc) cores ($cpu), binary \`${TUSK#"$HOME"/}\`

Pseudo-cluster on one machine: 3 datanodes, 3 tasktrackers (slots = cores each), replication 3.
Median of $RUNS runs; times are whole \`tusk job run\` processes unless said otherwise.

| benchmark | figure |
|---|---|
| empty job, map-only, submit to done | ${R[empty_m]} s |
| empty job, one reduce, submit to done | ${R[empty_r]} s (jobtracker's own timing ${R[empty_r_jt]} s) |
| wordcount input put ($(( R[wc_bytes] >> 20 )) MiB, replication 3) | ${R[wc_put]} s |
| wordcount $(( R[wc_bytes] >> 20 )) MiB, -r $REDUCES | ${R[wc_total]} s (map phase ${R[wc_map]} s, reduce phase ${R[wc_reduce]} s); ${R[wc_local]:-0}/${R[wc_maps]} maps node-local |
| teragen $TERA_ROWS rows ($tera_mb MB) | ${R[teragen]} s |
| terasort $tera_mb MB, -r $REDUCES | ${R[terasort]} s (map phase ${R[terasort-map]} s, reduce phase ${R[terasort-reduce]} s) |
| teravalidate (sorted output and teragen input, $((2 * tera_mb)) MB read) | ${R[teravalidate]} s |
TABLE
)
echo
echo "$table"
if [ -n "$REPORT" ]; then
  printf '\n%s\n' "$table" >> "$REPORT"
  echo; echo "appended to $REPORT"
fi
