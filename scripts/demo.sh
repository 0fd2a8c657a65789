#!/usr/bin/env bash
# Brings up the embedded pseudo-cluster in the background, runs a short demo with the fs
# shell, and stops the cluster. State goes to ./tusk-data (kept, so a second run finds it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh libclang-dev fuse3
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
# The release profile, as the test suite: RocksDB's C++ is built once.
cargo build --release
TUSK="$CARGO_TARGET_DIR/release/tusk"
PORT="${TUSK_DEMO_PORT:-9000}"
export TUSK_NAMENODE="127.0.0.1:$PORT"
"$TUSK" cluster up --dir ./tusk-data --port "$PORT" > ./tusk-data.log 2>&1 &
CLUSTER=$!
trap 'kill $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$TUSK" dfsadmin -safemode get >/dev/null 2>&1 && break
  kill -0 $CLUSTER 2>/dev/null || { cat ./tusk-data.log; exit 1; }
  sleep 0.1
done
run() { echo "\$ tusk $*"; "$TUSK" "$@" || echo "(exit $?)"; }
for _ in $(seq 100); do
  "$TUSK" dfsadmin -report 2>/dev/null | grep -q "Live datanodes (3)" && break
  sleep 0.2
done
run fs -mkdir -p /user/"$(id -un)"/demo/a/b
run fs -touchz /user/"$(id -un)"/demo/a/b/hello.txt
run fs -ls -R /user
run fs -mv /user/"$(id -un)"/demo/a/b/hello.txt /user/"$(id -un)"/demo/hello.txt
run fs -chmod 750 /user/"$(id -un)"/demo/a
run fs -stat "%n %b %r %u %g %a" /user/"$(id -un)"/demo/hello.txt /user/"$(id -un)"/demo/a
run fs -count /
head -c 20000000 /dev/urandom > ./tusk-data.sample
run fs -D dfs.blocksize=8m -put ./tusk-data.sample /user/"$(id -un)"/demo/sample
run fs -get /user/"$(id -un)"/demo/sample ./tusk-data.sample.back
cmp ./tusk-data.sample ./tusk-data.sample.back && echo "get returned identical bytes"
rm -f ./tusk-data.sample ./tusk-data.sample.back
printf 'one more line\n' > ./tusk-data.more
run fs -appendToFile ./tusk-data.more /user/"$(id -un)"/demo/sample
rm -f ./tusk-data.more
run fsck /user -files -blocks -locations
# A checkpoint now (the cluster's own checkpointer waits for checkpoint.period or .txns).
run checkpointer --once --namenode "$TUSK_NAMENODE" --dir ./tusk-data/checkpoint-demo
# MapReduce: wordcount over a small text on the cluster's jobtracker and tasktrackers.
export TUSK_MAPREDUCE__JOBTRACKER="$(sed -n 's/^  jobtracker \([0-9.:]*\) .*/\1/p' ./tusk-data.log)"
printf 'the quick brown fox\njumps over the lazy dog\nthe end\n' > ./tusk-data.words
run fs -put ./tusk-data.words /user/"$(id -un)"/demo/words.txt
rm -f ./tusk-data.words
run job run wordcount /user/"$(id -un)"/demo/words.txt /user/"$(id -un)"/demo/counts -r 2
run fs -cat /user/"$(id -un)"/demo/counts/part-r-00000 /user/"$(id -un)"/demo/counts/part-r-00001
# terasort in small: 100,000 rows (10 MB), sorted over 2 reduces, validated against the input.
run job run teragen 100000 /user/"$(id -un)"/demo/gen -m 2
run job run terasort /user/"$(id -un)"/demo/gen /user/"$(id -un)"/demo/sorted -r 2
run job run teravalidate /user/"$(id -un)"/demo/sorted /user/"$(id -un)"/demo/gen /user/"$(id -un)"/demo/report
# FUSE: the file system as a directory (needs /dev/fuse).
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  mkdir -p ./tusk-data.mnt
  "$TUSK" mount ./tusk-data.mnt --daemon --log ./tusk-data.mount.log
  echo "\$ ls -l ./tusk-data.mnt/user/$(id -un)/demo"; ls -l ./tusk-data.mnt/user/"$(id -un)"/demo
  echo "\$ cp README.md ./tusk-data.mnt/user/$(id -un)/demo/ && head -3 (through the mount)"
  cp README.md ./tusk-data.mnt/user/"$(id -un)"/demo/ && head -3 ./tusk-data.mnt/user/"$(id -un)"/demo/README.md
  fusermount3 -u ./tusk-data.mnt && rmdir ./tusk-data.mnt && echo "unmounted"
fi
run fs -rm -r /user/"$(id -un)"/demo
run fs -ls /nope
sleep 3  # the datanodes report their capacity with their next heartbeat
run dfsadmin -report
echo "demo done; the cluster log is in ./tusk-data.log"
