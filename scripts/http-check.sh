#!/usr/bin/env bash
# The HTTP face with clients nobody here wrote: starts `tusk cluster up`, puts data, runs a
# job, then drives WebHDFS with curl, the Python HdfsCLI (library and `hdfscli` command) and
# fsspec's webhdfs filesystem, and screenshots every page with headless Chromium into
# docs/screenshots/. Installs what it needs (pip: hdfs fsspec requests; Debian: chromium).
set -euo pipefail
NAME=http
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
python3 -c 'import hdfs, fsspec, requests, prometheus_client' 2>/dev/null || pip install -q hdfs fsspec requests prometheus-client
command -v chromium >/dev/null || bash scripts/setup.sh chromium

PORT=${PORT:-19300}
start_cluster "$PORT"
wait_for 10 "web addresses printed" grep -q "web        jobtracker" "$WORK/cluster.out"
NN_HTTP=$(sed -n 's|^  web        namenode http://\([0-9.:]*\)/.*|\1|p' "$WORK/cluster.out")
JT_HTTP=$(sed -n 's|^  web        jobtracker http://\([0-9.:]*\)/.*|\1|p' "$WORK/cluster.out")
DN_HTTP=$(sed -n 's|^  datanode 1 .*(http://\([0-9.:]*\))|\1|p' "$WORK/cluster.out")
[ -n "$NN_HTTP" ] && [ -n "$JT_HTTP" ] && [ -n "$DN_HTTP" ] || fail "no web addresses in the cluster's output"
echo "   namenode http://$NN_HTTP/  jobtracker http://$JT_HTTP/  datanode 1 http://$DN_HTTP/"
export TUSK_USER=root
W="http://$NN_HTTP/webhdfs/v1"

step "data and a finished job"
python3 scripts/gen-text.py "$WORK/text" 3000000
"$TUSK" fs -mkdir -p /user/root /data
"$TUSK" fs -put "$WORK/text" /data/text.txt
"$TUSK" job run wordcount /data/text.txt /data/counts -r 2 | grep -v '^ map' | sed 's/^/   /'

step "curl"
curl -sS "$W/data/text.txt?op=GETFILESTATUS&user.name=root"; echo
curl -sS -i -X PUT "$W/data/curl.txt?op=CREATE&user.name=root" | grep -i -E '^(HTTP|Location)' | sed 's/^/   /'
loc=$(curl -sS -i -X PUT "$W/data/curl.txt?op=CREATE&user.name=root" | sed -n 's/^[Ll]ocation: \(.*\)\r$/\1/p')
printf 'hello from curl\n' | curl -sS -i -X PUT -T - "$loc" | grep -E '^HTTP' | sed 's/^/   /'
[ "$(curl -sS -L "$W/data/curl.txt?op=OPEN&user.name=root")" = "hello from curl" ] || fail "curl OPEN"
echo "   curl: CREATE (307 + PUT 201), OPEN (-L) = 'hello from curl'"
curl -sS "$W/nope?op=GETFILESTATUS&user.name=root"; echo
curl -sS -o /dev/null -w '   unknown op -> %{http_code}\n' "$W/data?op=FOO&user.name=root"

step "Python HdfsCLI (hdfs $(python3 -c 'import hdfs; print(hdfs.__version__)'))"
head -c 5000000 /dev/urandom > "$WORK/blob.bin"
python3 - "$NN_HTTP" "$WORK" <<'PY'
import sys, os, filecmp
from hdfs import InsecureClient
nn, work = sys.argv[1], sys.argv[2]
c = InsecureClient(f"http://{nn}", user="root")
c.makedirs("/hdfscli")
c.upload("/hdfscli/blob.bin", f"{work}/blob.bin")
print("   upload: status", c.status("/hdfscli/blob.bin")["length"], "bytes")
c.download("/hdfscli/blob.bin", f"{work}/blob.back")
assert filecmp.cmp(f"{work}/blob.bin", f"{work}/blob.back", shallow=False), "download differs"
print("   download: identical")
with c.write("/hdfscli/notes.txt", encoding="utf-8") as w:
    w.write("one\n")
with c.write("/hdfscli/notes.txt", encoding="utf-8", append=True) as w:
    w.write("two\n")
with c.read("/hdfscli/notes.txt", encoding="utf-8") as r:
    assert r.read() == "one\ntwo\n"
print("   write + append + read: 'one\\ntwo\\n'")
print("   list /hdfscli:", c.list("/hdfscli"))
print("   content /hdfscli:", c.content("/hdfscli"))
print("   checksum:", c.checksum("/hdfscli/blob.bin")["algorithm"])
c.rename("/hdfscli/notes.txt", "/hdfscli/notes2.txt")
c.set_permission("/hdfscli/notes2.txt", "600")
assert c.status("/hdfscli/notes2.txt")["permission"] == "600"
assert c.delete("/hdfscli", recursive=True)
assert c.status("/hdfscli", strict=False) is None
print("   rename, set_permission, delete -r: ok")
try:
    c.status("/no/such")
except Exception as e:
    print("   error for a missing path:", type(e).__name__, str(e))
PY
cat > "$WORK/hdfscli.cfg" <<CFG
[global]
default.alias = tusk
[tusk.alias]
url = http://$NN_HTTP
user = root
CFG
export HDFSCLI_CONFIG="$WORK/hdfscli.cfg"
hdfscli upload "$WORK/blob.bin" /cli-blob.bin
hdfscli download /cli-blob.bin "$WORK/cli.back"
cmp "$WORK/blob.bin" "$WORK/cli.back" || fail "hdfscli round trip"
hdfscli download /data/text.txt - | cmp - "$WORK/text" || fail "hdfscli download to stdout"
echo "   hdfscli upload / download (file and to stdout): identical"

step "fsspec webhdfs ($(python3 -c 'import fsspec; print(fsspec.__version__)'))"
python3 - "$NN_HTTP" "$WORK" <<'PY'
import sys, hashlib, fsspec
nn, work = sys.argv[1], sys.argv[2]
host, port = nn.split(":")
fs = fsspec.filesystem("webhdfs", host=host, port=int(port), user="root")
data = open(f"{work}/blob.bin", "rb").read()
with fs.open("/fsspec/blob.bin", "wb", block_size=1 << 20) as f:   # CREATE, then one APPEND per 1 MiB buffer
    for i in range(0, len(data), 300_000):
        f.write(data[i:i + 300_000])
assert fs.cat("/fsspec/blob.bin") == data
print("   write (CREATE + APPENDs) then cat: identical,", fs.info("/fsspec/blob.bin")["size"], "bytes")
with fs.open("/fsspec/blob.bin", "rb") as f:
    f.seek(1_234_567)
    assert f.read(100_000) == data[1_234_567:1_334_567]
print("   ranged read at 1234567: identical")
print("   ls /:", sorted(p["name"] for p in fs.ls("/", detail=True)))
fs.rm("/fsspec", recursive=True)
assert not fs.exists("/fsspec")
print("   rm -r: gone")
PY

step "/metrics of each daemon through prometheus_client's parser; counters move"
python3 - "$NN_HTTP" "$DN_HTTP" "$JT_HTTP" "$W" <<'PY'
import sys, requests
from prometheus_client.parser import text_string_to_metric_families
nn, dn, jt, w = sys.argv[1:5]
def scrape(addr):
    fams = list(text_string_to_metric_families(requests.get(f"http://{addr}/metrics").text))
    return fams, {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams for s in f.samples}
def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)
for who, addr in (("namenode", nn), ("datanode", dn), ("jobtracker", jt)):
    fams, samples = scrape(addr)
    print(f"   {who}: {len(fams)} metric families, {len(samples)} samples parsed")
_, before = scrape(nn)
for i in range(50):
    requests.get(f"{w}/data?op=LISTSTATUS&user.name=root").raise_for_status()
requests.put(f"{w}/data/m?op=MKDIRS&user.name=root").raise_for_status()
_, after = scrape(nn)
for name in ("rpc_requests_total", "webhdfs_requests_total", "namenode_editlog_transactions_total"):
    b, a = total(before, name), total(after, name)
    assert a > b, f"{name} did not move: {b} -> {a}"
    print(f"   {name}: {b:.0f} -> {a:.0f}")
PY

step "pages in headless Chromium -> docs/screenshots/"
mkdir -p docs/screenshots
JOB=$(curl -sS "http://$JT_HTTP/" | sed -n 's|.*href="/job?id=\([^"]*\)".*|\1|p' | head -1)
shot() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1366,900 \
    --screenshot="docs/screenshots/$1.png" "$2" >/dev/null 2>&1 || fail "chromium on $2"
  echo "   $1.png <- $2"
}
shot namenode-overview "http://$NN_HTTP/"
shot namenode-datanodes "http://$NN_HTTP/datanodes"
shot namenode-browser "http://$NN_HTTP/explorer?path=/data"
shot namenode-file "http://$NN_HTTP/explorer?path=/data/text.txt"
shot datanode "http://$DN_HTTP/"
shot jobtracker-jobs "http://$JT_HTTP/"
shot jobtracker-job "http://$JT_HTTP/job?id=$JOB"
shot jobtracker-trackers "http://$JT_HTTP/trackers"
echo; echo "http-check passed"
