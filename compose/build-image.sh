#!/usr/bin/env bash
# Builds the `tusk` container image with no base image and no network: FROM scratch, holding
# the release binary (stripped), exactly the shared libraries it links (as ldd lists them),
# and the few files glibc reads (passwd, group, nsswitch.conf for user names and DNS).
#
#   cargo build --release && bash compose/build-image.sh        # -> image tusk:latest
#
# TUSK_BIN=path picks another binary; TUSK_IMAGE=name:tag another image name.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${TUSK_IMAGE:-tusk:latest}"
if [ -z "${TUSK_BIN:-}" ]; then
  target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  TUSK_BIN="$target/release/tusk"
fi
[ -x "$TUSK_BIN" ] || { echo "build-image: no binary at $TUSK_BIN: run \`cargo build --release\` first (or set TUSK_BIN)" >&2; exit 1; }
command -v docker >/dev/null || { echo "build-image: docker not found" >&2; exit 1; }

stage=$(mktemp -d /tmp/tusk-image.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
mkdir -p "$root/usr/bin" "$root/etc" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
strip -o "$root/usr/bin/tusk" "$TUSK_BIN"

# Every library the dynamic linker loads, at the path it loads it from (symlinks followed).
libs=$(ldd "$TUSK_BIN" | awk '/=> \// { print $3 } /^\s*\/[^ ]+ \(0x/ { print $1 }' | sort -u)
[ -n "$libs" ] || { echo "build-image: ldd found no libraries in $TUSK_BIN" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The loader is found by its absolute path in the binary's PT_INTERP; make sure it is there.
interp=$(readelf -l "$TUSK_BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
if [ -n "$interp" ] && [ ! -e "$root$interp" ]; then
  mkdir -p "$root$(dirname "$interp")"
  cp -L "$interp" "$root$interp"
fi

# The daemons run as root, the namenode's superuser; `supergroup` is HDFS's default group.
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/data:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
P
cat > "$root/etc/group" <<'G'
root:x:0:
supergroup:x:1000:root
nogroup:x:65534:
G
# glibc (2.34 and later) has the files and dns lookups built in; this file only names them.
cat > "$root/etc/nsswitch.conf" <<'N'
passwd: files
group: files
hosts: files dns
N

cp compose/Dockerfile "$stage/Dockerfile"
docker build --quiet -t "$IMAGE" "$stage" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "built $IMAGE: $((size / 1024 / 1024)) MiB ($(echo "$libs" | wc -w) shared libraries) from $TUSK_BIN"
