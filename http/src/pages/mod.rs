//! Server-rendered pages: plain HTML and a little CSS, no JavaScript; each page refreshes
//! itself every 10 seconds (`<meta http-equiv="refresh">`).

pub mod datanode;
pub mod jobtracker;
pub mod namenode;

use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

const CSS: &str = "
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #263238; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
header a { color: #cfd8dc; text-decoration: none; } header a:hover { color: #fff; }
header .title { font-weight: bold; font-size: 1.2em; color: #fff; }
main { padding: 12px 24px; max-width: 1280px; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; font-size: 1.15em; }
table { border-collapse: collapse; margin-bottom: 16px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; font-size: 0.92em; }
th { background: #f3f5f7; } table.kv th { width: 260px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #e0e0e0; width: 160px; height: 12px; display: inline-block; vertical-align: middle; }
.bar span { background: #43a047; height: 12px; display: block; }
.ok { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; } .warn { color: #ef6c00; font-weight: bold; }
footer { color: #888; font-size: 0.8em; padding: 12px 24px; }
";

/// A whole page: header with the daemon's name and links, the body, a footer.
pub fn page(daemon: &str, title: &str, nav: &[(&str, &str)], body: Markup) -> Html<String> {
    let m = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="10";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (daemon) " — " (title) }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                header {
                    span.title { "Tusk " (daemon) }
                    @for (href, label) in nav { a href=(href) { (label) } }
                }
                main { h1 { (title) } (body) }
                footer { "Tusk " (tusk_common::VERSION) " · refreshes every 10 s · " a href="/metrics" { "/metrics" } }
            }
        }
    };
    Html(m.into_string())
}

/// `1.5 GB` style sizes (powers of 1024, as Hadoop's pages).
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// A time in ms since the epoch, as local `YYYY-MM-DD HH:MM:SS`; "never" for 0.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "never".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A duration in ms as `1h 2m 3s` / `4.5 s`.
pub fn duration(ms: i64) -> String {
    if ms < 0 {
        return "-".into();
    }
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h {}m {}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

pub fn percent_bar(done: u64, total: u64) -> Markup {
    let pct = if total == 0 { 0.0 } else { done as f64 * 100.0 / total as f64 };
    html! { span.bar title=(format!("{pct:.0}%")) { span style=(format!("width:{pct:.0}%")) {} } " " (format!("{pct:.0}%")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.00 GB");
        assert_eq!(duration(4500), "4.5 s");
        assert_eq!(duration(3_723_000), "1h 2m 3s");
        assert_eq!(time(0), "never");
    }

    #[test]
    fn text_is_escaped() {
        let p = page("namenode", "<x>", &[], html! { p { ("<script>") } }).0;
        assert!(p.contains("&lt;script&gt;") && !p.contains("<script>"));
    }
}
