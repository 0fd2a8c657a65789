#!/usr/bin/env bash
# `tusk mount` on the pseudo-cluster, as a user would use it (issue 7's checks):
#
#  1. `cp -r` of a source tree (TREE, default /usr/include/node: ~2,400 files) into the mount
#     and back out: `diff -r` clean; `tar -x` into the mount and `tar -c` from it round-trip;
#     `ls -l`, `stat` and `find` on the mount agree with `tusk fs -ls`;
#  2. a BIG_MB (2048) MiB file written with dd through the mount reads back identical through
#     `tusk fs -cat`, and one put with `tusk fs -put` reads back identical through the mount;
#  4. a random write (`dd conv=notrunc seek=...`) into an existing file fails with a clear
#     error and the file is unchanged;
#  5. mounting when the namenode is unreachable fails within 10 s with a clear message, and
#     SIGTERM of the mount process leaves no stale mount behind.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=fuse-check
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
TREE="${TREE:-/usr/include/node}"
BIG_MB="${BIG_MB:-2048}"
PORT="${PORT:-9351}"
start_cluster "$PORT"
MNT="$WORK/mnt"
mkdir -p "$MNT"
"$TUSK" mount "$MNT" > "$WORK/mount.out" 2> "$WORK/mount.log" &
MOUNT_PID=$!
PIDS+=("$MOUNT_PID")
trap 'st=$?; fusermount3 -u -z "$MNT" 2>/dev/null || true; cleanup $st' EXIT
wait_for 15 "mounted" grep -q " $MNT fuse" /proc/mounts

step "1. cp -r, tar, ls, stat, find: $TREE ($(find "$TREE" -type f | wc -l) files, $(du -sh "$TREE" | cut -f1))"
t0=$SECONDS; cp -r "$TREE" "$MNT/tree"; echo "   cp -r in: $(( SECONDS - t0 ))s"
t0=$SECONDS; cp -r "$MNT/tree" "$WORK/back"; echo "   cp -r out: $(( SECONDS - t0 ))s"
diff -r "$TREE" "$WORK/back" || fail "diff -r after cp in and out"
echo "   diff -r: clean"
mkdir "$MNT/untar"
t0=$SECONDS; tar -c -C "$TREE" . | tar -x -C "$MNT/untar"; echo "   tar -x into the mount: $(( SECONDS - t0 ))s"
mkdir "$WORK/retar"
tar -c -C "$MNT/untar" . | tar -x -C "$WORK/retar"
diff -r "$TREE" "$WORK/retar" || fail "diff -r after tar in and out"
echo "   tar round trip: clean"
[ "$(find "$MNT/tree" -type f | wc -l)" = "$(find "$TREE" -type f | wc -l)" ] || fail "find counts differ"
[ "$(find "$MNT/tree" -type d | wc -l)" = "$(find "$TREE" -type d | wc -l)" ] || fail "find directory counts differ"
echo "   find: $(find "$MNT/tree" -type f | wc -l) files, $(find "$MNT/tree" -type d | wc -l) directories, as in $TREE"
f=$(cd "$TREE" && find . -type f -size +10k -print -quit | sed "s|^\./||")
stat -c '   stat: %n %s bytes, mode %a, owner %U, mtime %y' "$MNT/untar/$f"
ls -l "$MNT/untar/$f" | sed 's/^/   ls -l: /'
"$TUSK" fs -ls "/untar/$f" | tail -1 | sed 's/^/   tusk fs -ls: /'
[ "$(stat -c %s "$MNT/untar/$f")" = "$(stat -c %s "$TREE/$f")" ] || fail "sizes differ"
[ "$(stat -c %a "$MNT/untar/$f")" = "$(stat -c %a "$TREE/$f")" ] || fail "tar did not restore the mode"
[ "$(stat -c %Y "$MNT/untar/$f")" = "$(stat -c %Y "$TREE/$f")" ] || fail "tar did not restore the mtime"
echo "   size, mode and mtime as in $TREE (tar restored them)"

step "2. $BIG_MB MiB: dd through the mount, read with tusk fs -cat; and the other way"
head -c $((BIG_MB << 20)) /dev/urandom > "$WORK/big"
t0=$SECONDS; dd if="$WORK/big" of="$MNT/big-dd" bs=1M status=none; echo "   dd into the mount: $(( SECONDS - t0 ))s"
"$TUSK" fs -cat /big-dd | cmp - "$WORK/big" || fail "tusk fs -cat of the file dd wrote through the mount differs"
echo "   tusk fs -cat /big-dd: identical"
"$TUSK" fs -put "$WORK/big" /big-put
t0=$SECONDS; cmp "$MNT/big-put" "$WORK/big" || fail "the put file read through the mount differs"
echo "   cmp through the mount of the put file: identical ($(( SECONDS - t0 ))s)"
rm -f "$WORK/big"

step "4. a random write into an existing file"
printf 'hello, tusk\n' > "$MNT/hello.txt"
if printf X | dd of="$MNT/hello.txt" bs=1 seek=3 conv=notrunc status=none 2> "$WORK/dd.err"; then fail "the random write succeeded"; fi
echo "   dd conv=notrunc seek=3: $(cat "$WORK/dd.err")"
[ "$("$TUSK" fs -cat /hello.txt)" = "hello, tusk" ] || fail "the file changed"
echo "   the file is unchanged; the mount's log: $(grep -m1 'refused a write' "$WORK/mount.log" | sed 's/.*WARN //')"

step "5. SIGTERM of the mount; mounting with the namenode unreachable"
kill -TERM "$MOUNT_PID"
wait "$MOUNT_PID" || fail "the mount exited with an error: $(tail -3 "$WORK/mount.log")"
grep -q " $MNT fuse" /proc/mounts && fail "a stale mount is left behind"
echo "   the mount process exited 0 and $MNT is no longer mounted: $(tail -1 "$WORK/mount.log")"
t0=$(date +%s.%N)
if "$TUSK" mount "$MNT" --namenode 127.0.0.1:1 2> "$WORK/nonn.err"; then fail "mounted without a namenode"; fi
echo "   $(cat "$WORK/nonn.err") (after $(echo "$(date +%s.%N) $t0" | awk '{ printf "%.1f", $1 - $2 }')s)"
grep -q " $MNT fuse" /proc/mounts && fail "something was mounted"
echo
echo "fuse-check: passed"
