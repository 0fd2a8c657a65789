#!/usr/bin/env bash
# The compose cluster end to end, on the machine's Docker engine (skipped, loudly, without
# one): builds the release binary and the image, starts the cluster with 4 workers under its
# own project name and host ports, waits for every container to be healthy, puts files from
# the host and from inside a container, runs wordcount, `docker kill`s a worker and waits for
# full replication, cuts another worker off its network for 60 s and reconnects it, checks
# every file byte for byte and the job's output against coreutils, then removes everything
# (containers, network, volumes). KEEP=1 keeps the cluster running for a look; TUSK_BIN=path
# uses that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$SECONDS
step() { echo; echo "== [$(( SECONDS - t_start ))s] $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "############################################################"
  echo "# compose/smoke.sh SKIPPED: no Docker engine is reachable  #"
  echo "############################################################"
  exit 0
fi
if docker compose version >/dev/null 2>&1; then DC=(docker compose); else DC=(docker-compose); fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
if [ -n "${TUSK_BIN:-}" ]; then
  step "build: compose/build-image.sh from $TUSK_BIN"
  TUSK="$TUSK_BIN"
else
  step "build: cargo build --release, compose/build-image.sh"
  cargo build --release 2>&1 | tail -1
  TUSK="$CARGO_TARGET_DIR/release/tusk"
fi
export TUSK_IMAGE=tusk:smoke
TUSK_BIN="$TUSK" bash compose/build-image.sh

PROJECT="tusk-smoke-$$"
export TUSK_NAMENODE_PORT=19000 TUSK_NAMENODE_HTTP_PORT=19870 TUSK_JOBTRACKER_PORT=18021 TUSK_JOBTRACKER_HTTP_PORT=15030
DCP=("${DC[@]}" -p "$PROJECT" -f compose/docker-compose.yml)
NET="${PROJECT}_default"
WORK=$(mktemp -d /tmp/tusk-smoke.XXXXXX)
cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    echo "--- logs (last 30 lines per container) ---" >&2
    "${DCP[@]}" logs --no-color --tail 30 >&2 2>&1 || true
  fi
  if [ -z "${KEEP:-}" ]; then
    "${DCP[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    docker image rm -f tusk:smoke >/dev/null 2>&1 || true
  else
    echo "KEEP=1: project $PROJECT left running (${DCP[*]} down -v)"
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

# In-container commands: the namenode's container has the binary and TUSK_NAMENODE set.
nn() { "${DCP[@]}" exec -T namenode /usr/bin/tusk "$@"; }
# From the host: the published RPC port; the datanodes at their container addresses.
host_fs() { "$TUSK" fs -fs "127.0.0.1:$TUSK_NAMENODE_PORT" "$@"; }
workers() { "${DCP[@]}" ps -q worker; }
all_healthy() {
  local ids n=0
  ids=$("${DCP[@]}" ps -q)
  for id in $ids; do
    [ "$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")" = healthy ] || return 1
    n=$((n + 1))
  done
  [ "$n" -eq "$1" ]
}
wait_for() {
  local secs=$1 what=$2; shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - t0 < secs )) || fail "$what (waited ${secs}s)"
    sleep 1
  done
  echo "   ok after $(( SECONDS - t0 ))s: $what"
}
live() { nn dfsadmin -report -live | grep -c '^Name: '; }
live_is() { [ "$(live)" = "$1" ]; }
fully_replicated() {
  local out
  out=$(nn fsck /) || return 1
  grep -q "is HEALTHY" <<<"$out" && grep -qP "Under-replicated blocks:\t0 " <<<"$out"
}

step "up: ${DCP[*]} up -d --scale worker=4"
"${DCP[@]}" up -d --scale worker=4 2>&1 | sed 's/^/   /'
wait_for 180 "all 7 containers healthy" all_healthy 7
nn dfsadmin -report -live | grep -E '^(Name|Hostname):' | sed 's/^/   /'

step "put and get from the host (127.0.0.1:$TUSK_NAMENODE_PORT) and from inside a container"
head -c $((24 << 20)) /dev/urandom > "$WORK/host.bin"
python3 scripts/gen-text.py "$WORK/text" $((16 << 20))
host_fs -mkdir -p /smoke
host_fs -D dfs.blocksize=1m -put "$WORK/host.bin" /smoke/host.bin
host_fs -D dfs.blocksize=1m -put "$WORK/text" /smoke/text
head -c $((8 << 20)) /dev/urandom > "$WORK/inside.bin"
nn_id=$("${DCP[@]}" ps -q namenode)
docker cp "$WORK/inside.bin" "$nn_id:/tmp/inside.bin"
nn fs -D dfs.blocksize=1m -put /tmp/inside.bin /smoke/inside.bin
host_fs -get /smoke/inside.bin "$WORK/inside.from-host"
cmp "$WORK/inside.bin" "$WORK/inside.from-host"
nn fs -get /smoke/host.bin /tmp/host.from-container
docker cp "$nn_id:/tmp/host.from-container" "$WORK/host.from-container"
cmp "$WORK/host.bin" "$WORK/host.from-container"
host_fs -ls /smoke | sed 's/^/   /'
echo "   put from the host, got in a container: identical; put in a container, got on the host: identical"

step "wordcount in the cluster: tusk job run wordcount /smoke/text /smoke/wc -r 2"
"${DCP[@]}" exec -T jobtracker /usr/bin/tusk job run wordcount /smoke/text /smoke/wc -r 2 | grep -v '^ map' | sed 's/^/   /'
tr -s '[:space:]' '\n' < "$WORK/text" | grep -v '^$' | LC_ALL=C sort | LC_ALL=C uniq -c | awk '{print $2 "\t" $1}' > "$WORK/expected"
check_wordcount() {
  for p in $(host_fs -ls /smoke/wc | awk '{print $NF}' | grep part-r-); do host_fs -cat "$p"; done | LC_ALL=C sort > "$WORK/got"
  cmp "$WORK/expected" "$WORK/got" || fail "wordcount output differs from coreutils"
  echo "   wordcount output = tr | sort | uniq -c ($(wc -l < "$WORK/expected") words)"
}
check_wordcount

step "docker kill one worker; wait until the namenode sees 3 live and every block has 3 replicas again"
read -r -a W <<<"$(workers | tr '\n' ' ')"
docker kill "${W[0]}" >/dev/null
echo "   killed ${W[0]:0:12}"
wait_for 120 "3 live datanodes" live_is 3
wait_for 240 "fsck: HEALTHY, 0 under-replicated" fully_replicated
nn fsck / | grep -E "Total blocks|Under-replicated|Status" | sed 's/^/   /'
docker start "${W[0]}" >/dev/null
wait_for 120 "the killed worker back: 4 live" live_is 4

step "docker network disconnect another worker for 60 s, then reconnect it"
docker network disconnect "$NET" "${W[1]}"
echo "   disconnected ${W[1]:0:12}"
sleep 60
live | sed 's/^/   live datanodes while it is cut off: /'
docker network connect "$NET" "${W[1]}"
wait_for 120 "reconnected: 4 live" live_is 4
wait_for 240 "fsck: HEALTHY, 0 under-replicated" fully_replicated
wait_for 120 "all 7 containers healthy" all_healthy 7

step "every file byte for byte, the job's output again"
host_fs -get /smoke/host.bin "$WORK/host.after"
cmp "$WORK/host.bin" "$WORK/host.after"
host_fs -get /smoke/inside.bin "$WORK/inside.after"
cmp "$WORK/inside.bin" "$WORK/inside.after"
host_fs -get /smoke/text "$WORK/text.after"
cmp "$WORK/text" "$WORK/text.after"
echo "   host.bin, inside.bin, text: identical"
check_wordcount
nn fsck / | grep -E "Status|Total blocks|Under-replicated|Corrupt" | sed 's/^/   /'

step "down -v"
echo "compose/smoke.sh passed in $(( SECONDS - t_start ))s"
