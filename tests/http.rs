//! The HTTP face through the real binary: `tusk cluster up`, some data and a finished job,
//! then every page (with the figures it must show), `/metrics` of each daemon (valid
//! Prometheus text whose counters move), and WebHDFS: shapes, the two-step CREATE, OPEN
//! through the redirect, and bad input answered with Hadoop's RemoteException and status.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{tusk, tusk_bin};

struct Cluster {
    child: Child,
    nn: String,
    nn_http: String,
    jt: String,
    jt_http: String,
    dn_http: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    // Free web ports, so tests can run side by side.
    let env =
        [("TUSK_NAMENODE__HTTP_ADDRESS", "127.0.0.1:0"), ("TUSK_MAPREDUCE__JOBTRACKER_HTTP_ADDRESS", "127.0.0.1:0")];
    let (child, rx) = support::spawn_cluster_up(&dir.path().join("c"), &env, Stdio::null());
    let (mut nn, mut nn_http, mut jt, mut jt_http, mut dn_http) =
        (String::new(), String::new(), String::new(), String::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while jt_http.is_empty() {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("cluster up output");
        let words: Vec<&str> = line.split_whitespace().collect();
        let url = |w: &str| {
            w.trim_start_matches("(http://").trim_start_matches("http://").trim_end_matches([')', '/']).to_owned()
        };
        match words.as_slice() {
            ["namenode", addr, ..] => nn = addr.to_string(),
            ["datanode", _, _, u] => dn_http.push(url(u)),
            ["jobtracker", addr, ..] => jt = addr.to_string(),
            ["web", "namenode", u] => nn_http = url(u),
            ["web", "jobtracker", u] => jt_http = url(u),
            _ => {}
        }
    }
    let c = Cluster { child, nn, nn_http, jt, jt_http, dn_http, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tusk(&c.nn, "root", &["dfsadmin", "-report"]).stdout.contains("Live datanodes (3):") {
        assert!(Instant::now() < deadline, "3 live datanodes");
        std::thread::sleep(Duration::from_millis(200));
    }
    c
}

struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 client (one request per connection): what curl would do.
fn http(method: &str, url: &str, body: &[u8]) -> Resp {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") {
        body = dechunk(&body);
    }
    Resp { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// Checks the Prometheus text format line by line; returns samples by `name{labels}`.
fn prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix('#') {
            let words: Vec<&str> = c.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP") | Some(&"TYPE")), "bad comment line: {line}");
            if words[0] == "TYPE" {
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&words[2]), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.insert(series.to_owned(), v);
    }
    out
}

fn sum_of(samples: &HashMap<String, f64>, prefix: &str) -> f64 {
    samples.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

fn assert_remote(r: &Resp, status: u16, exception: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let j = r.json();
    assert_eq!(j["RemoteException"]["exception"], exception, "{j}");
    assert!(j["RemoteException"]["javaClassName"].as_str().unwrap().ends_with(exception), "{j}");
    assert!(!j["RemoteException"]["message"].as_str().unwrap().is_empty(), "{j}");
}

#[test]
fn pages_metrics_and_webhdfs() {
    let c = start();
    let nn = format!("http://{}", c.nn_http);
    let jt = format!("http://{}", c.jt_http);
    assert_eq!(c.dn_http.len(), 3);

    // Data and a finished job.
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("words.txt");
    std::fs::write(&text, "a b c a b a\n".repeat(1000)).unwrap();
    assert_eq!(tusk(&c.nn, "root", &["fs", "-put", text.to_str().unwrap(), "/words.txt"]).code, 0);
    let job = Command::new(tusk_bin())
        .args(["job", "run", "wordcount", "/words.txt", "/wc"])
        .env("TUSK_NAMENODE", &c.nn)
        .env("TUSK_MAPREDUCE__JOBTRACKER", &c.jt)
        .env("TUSK_USER", "root")
        .output()
        .unwrap();
    assert!(job.status.success(), "{}", String::from_utf8_lossy(&job.stderr));

    // The namenode's pages.
    let before = prometheus(&http("GET", &format!("{nn}/metrics"), b"").text());
    let home = http("GET", &format!("{nn}/"), b"");
    assert_eq!(home.status, 200);
    let h = home.text();
    assert!(h.contains(r#"id="live-nodes">3<"#), "{h}");
    assert!(h.contains(r#"id="dead-nodes">0<"#), "{h}");
    assert!(h.contains(r#"id="safemode">OFF<"#), "{h}");
    assert!(h.contains(r#"id="missing-blocks">0<"#), "{h}");
    assert!(h.contains("http-equiv=\"refresh\""), "pages refresh themselves");
    let dns = http("GET", &format!("{nn}/datanodes"), b"").text();
    assert_eq!(dns.matches("In service").count(), 3, "{dns}");
    let listing = http("GET", &format!("{nn}/explorer?path=/"), b"").text();
    assert!(listing.contains("words.txt") && listing.contains("wc/"), "{listing}");
    let file = http("GET", &format!("{nn}/explorer?path=/words.txt"), b"").text();
    assert!(file.contains("12000 bytes") && file.contains("blk_") && file.contains("Download"), "{file}");
    // Each datanode's page, and the jobtracker's.
    for d in &c.dn_http {
        let p = http("GET", &format!("http://{d}/"), b"").text();
        assert!(p.contains(r#"id="replicas">"#) && p.contains("In service"), "{p}");
    }
    let jobs = http("GET", &format!("{jt}/"), b"").text();
    assert!(jobs.contains(r#"id="trackers"><a href="/trackers">3<"#), "{jobs}");
    assert!(jobs.contains("SUCCEEDED") && jobs.contains("wordcount"), "{jobs}");
    let id = jobs.split("/job?id=").nth(1).and_then(|s| s.split('"').next()).expect("a job link").to_owned();
    let page = http("GET", &format!("{jt}/job?id={id}"), b"").text();
    assert!(page.contains(r#"id="job-state">SUCCEEDED<"#) && page.contains("DATA_LOCAL"), "{page}");
    assert!(http("GET", &format!("{jt}/trackers"), b"").text().matches("healthy").count() >= 3);

    // WebHDFS.
    let w = |path: &str, q: &str| format!("{nn}/webhdfs/v1{path}?user.name=root&{q}");
    let st = http("GET", &w("/words.txt", "op=GETFILESTATUS"), b"").json();
    assert_eq!(st["FileStatus"]["length"], 12000);
    assert_eq!(st["FileStatus"]["type"], "FILE");
    assert_eq!(st["FileStatus"]["permission"], "644");
    assert_eq!(st["FileStatus"]["pathSuffix"], "");
    let ls = http("GET", &w("/", "op=LISTSTATUS"), b"").json();
    let names: Vec<&str> = ls["FileStatuses"]["FileStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pathSuffix"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"words.txt") && names.contains(&"wc"), "{ls}");
    // CREATE: 307 to a datanode, then the data there; 201 with a Location.
    let step1 = http("PUT", &w("/up/new.bin", "op=CREATE&overwrite=false"), b"");
    assert_eq!(step1.status, 307, "{}", step1.text());
    let location = step1.headers["location"].clone();
    assert!(c.dn_http.iter().any(|d| location.starts_with(&format!("http://{d}/"))), "{location}");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let step2 = http("PUT", &location, &data);
    assert_eq!(step2.status, 201, "{}", step2.text());
    assert!(step2.headers["location"].ends_with("/up/new.bin"));
    // OPEN: 307, then the bytes (offset and length honoured).
    let open = http("GET", &w("/up/new.bin", "op=OPEN&offset=1000&length=5000"), b"");
    assert_eq!(open.status, 307);
    let got = http("GET", &open.headers["location"], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, data[1000..6000]);
    let noredirect = http("PUT", &w("/up/x", "op=CREATE&noredirect=true"), b"").json();
    assert!(noredirect["Location"].as_str().unwrap().contains("op=CREATE"), "{noredirect}");
    // A CREATE without its second step creates nothing.
    assert_remote(&http("GET", &w("/up/x", "op=GETFILESTATUS"), b""), 404, "FileNotFoundException");
    assert_eq!(http("PUT", &w("/up/dir", "op=MKDIRS"), b"").json()["boolean"], true);
    assert_eq!(http("PUT", &w("/up/new.bin", "op=RENAME&destination=/up/dir/moved.bin"), b"").json()["boolean"], true);
    let sum = http("GET", &w("/up/dir/moved.bin", "op=GETFILECHECKSUM"), b"").json();
    assert_eq!(sum["FileChecksum"]["algorithm"], "MD5-of-0MD5-of-512CRC32C");
    assert_eq!(sum["FileChecksum"]["length"], 28);
    assert_eq!(http("DELETE", &w("/up", "op=DELETE&recursive=true"), b"").json()["boolean"], true);

    // Bad input: RemoteException with Hadoop's status codes, and nothing changed.
    assert_remote(&http("GET", &w("/words.txt", "op=NOSUCHOP"), b""), 400, "IllegalArgumentException");
    assert_remote(&http("GET", &w("/words.txt", ""), b""), 400, "IllegalArgumentException");
    assert_remote(&http("PUT", &w("/words.txt", "op=RENAME"), b""), 400, "IllegalArgumentException");
    assert_remote(&http("GET", &w("/a/../words.txt", "op=GETFILESTATUS"), b""), 400, "InvalidPathException");
    assert_remote(&http("GET", &w("/missing", "op=GETFILESTATUS"), b""), 404, "FileNotFoundException");
    assert_remote(
        &http("GET", &w("/words.txt", "op=OPEN&length=99999999999999999999999"), b""),
        400,
        "IllegalArgumentException",
    );
    assert_remote(&http("GET", &w("/words.txt", "op=OPEN&offset=-5"), b""), 400, "IllegalArgumentException");
    assert_remote(
        &http("PUT", &format!("{nn}/webhdfs/v1/forbidden?user.name=nobody&op=MKDIRS"), b""),
        403,
        "AccessControlException",
    );
    assert_remote(&http("PUT", &w("/words.txt", "op=CREATE&permission=999"), b""), 400, "IllegalArgumentException");
    assert_eq!(tusk(&c.nn, "root", &["fs", "-test", "-e", "/forbidden"]).code, 1, "nothing was made");

    // /metrics: valid text, and counters moved with what ran above.
    let after = prometheus(&http("GET", &format!("{nn}/metrics"), b"").text());
    assert!(
        sum_of(&after, "rpc_requests_total{") > sum_of(&before, "rpc_requests_total{"),
        "namenode RPC counters did not move"
    );
    assert!(sum_of(&after, "webhdfs_requests_total{") >= 19.0, "one count per WebHDFS request above");
    assert!(after.keys().any(|k| k.starts_with("namenode_editlog_sync_seconds_bucket")));
    assert!(after.keys().any(|k| k.starts_with("rpc_duration_seconds_bucket")));
    let jm = prometheus(&http("GET", &format!("{jt}/metrics"), b"").text());
    assert!(sum_of(&jm, "jobtracker_attempts_total{") >= 2.0);
    let dm = prometheus(&http("GET", &format!("http://{}/metrics", c.dn_http[0]), b"").text());
    assert!(sum_of(&dm, "datanode_bytes_written_total") > 0.0);
}
