//! Pure formatting shared by `-du`, `-df`, `tusk fsck` and `tusk dfsadmin -report`, matching
//! Hadoop's Java output (its `TableBuilder`, `String.format`, `Float.toString`, `byteDesc`
//! and `Date.toString`).

use chrono::{DateTime, Offset, TimeZone};

/// Java `String.length()` counts UTF-16 units; padding must too.
fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Hadoop `FsUsage.TableBuilder.printToStream`: columns joined by two spaces, left-aligned
/// (`%-Ns`) unless right-aligned (`%Ns`); the last column, when left-aligned, is not padded.
pub fn format_table(rows: &[Vec<String>], right_align: &[bool]) -> Vec<String> {
    let cols = rows.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(java_len(cell));
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(java_len(cell));
                if right_align.get(i).copied().unwrap_or(false) {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 != cols {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            line
        })
        .collect()
}

/// One `-du` row: (size, disk space consumed with all replicas, path), already formatted.
pub fn format_du(rows: &[(String, String, String)], header: bool) -> Vec<String> {
    let mut table: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if header {
        table.push(vec!["SIZE".into(), "DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS".into(), "FULL_PATH_NAME".into()]);
    }
    table.extend(rows.iter().map(|(a, b, c)| vec![a.clone(), b.clone(), c.clone()]));
    if table.len() == usize::from(header) {
        return Vec::new();
    }
    format_table(&table, &[])
}

/// `-df` lines: the header then one row per path argument (every row is the same file
/// system). `Use%` is Java's `%.0f%%` of used/capacity (0% for an empty cluster).
pub fn format_df(fs_uri: &str, capacity: u64, used: u64, remaining: u64, rows: usize, human: bool) -> Vec<String> {
    let size = |n: u64| if human { crate::format::human_bytes(n) } else { n.to_string() };
    let pct = if capacity == 0 { 0.0 } else { used as f64 / capacity as f64 * 100.0 };
    let mut table =
        vec![vec!["Filesystem", "Size", "Used", "Available", "Use%"].into_iter().map(String::from).collect()];
    for _ in 0..rows {
        table.push(vec![
            fs_uri.to_owned(),
            size(capacity),
            size(used),
            size(remaining),
            format!("{}%", java_fixed(pct, 0)),
        ]);
    }
    if rows == 0 {
        return Vec::new();
    }
    format_table(&table, &[false, true, true, true, true])
}

/// Java `String.format("%.Nf", v)` for a finite v >= 0: HALF_UP on the shortest
/// round-trip decimal digits (Rust rounds ties to even on the binary value).
pub fn java_fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return if v.is_nan() { "NaN".into() } else { "Infinity".into() };
    }
    let neg = v < 0.0;
    let shortest = format!("{}", v.abs());
    let (int_part, frac) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int_part.bytes().collect();
    let fb = frac.as_bytes();
    for i in 0..decimals {
        digits.push(fb.get(i).copied().unwrap_or(b'0'));
    }
    if fb.get(decimals).is_some_and(|&d| d >= b'5') {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - decimals;
    let mut out = String::new();
    if neg && digits.iter().any(|&d| d != b'0') {
        out.push('-');
    }
    out.extend(digits[..split].iter().map(|&b| char::from(b)));
    if decimals > 0 {
        out.push('.');
        out.extend(digits[split..].iter().map(|&b| char::from(b)));
    }
    out
}

/// Java `Float.toString`: "100.0", "33.333332", "1.0E-4".
pub fn java_float(f: f32) -> String {
    if f == 0.0 {
        return "0.0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = f.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{f}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mant = if mant.contains('.') { mant.to_owned() } else { format!("{mant}.0") };
    format!("{mant}E{exp}")
}

/// Hadoop `StringUtils.byteDesc`: `long2String(n, "B", 2)`: "0 B", "24 KB", "465.62 GB".
pub fn byte_desc(n: u64) -> String {
    const SYMBOLS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut k = 1usize;
    while k < SYMBOLS.len() && n >= 1u64 << (10 * (k + 1)) {
        k += 1;
    }
    let shift = 10 * k as u32;
    let num = if n & ((1u64 << shift) - 1) == 0 {
        (n >> shift).to_string()
    } else {
        let mut s = java_fixed(n as f64 / (1u64 << shift) as f64, 2);
        if s.starts_with("1024") && k < SYMBOLS.len() {
            k += 1;
            s = java_fixed(n as f64 / (1u64 << (10 * k as u32)) as f64, 2);
        }
        s
    };
    format!("{num} {}B", SYMBOLS[k - 1])
}

/// Java `Date.toString()`: "Sun Nov 22 16:06:54 UTC 2026". Zones without a name print as
/// Java prints custom zones ("GMT+08:00").
pub fn java_date<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    let secs = t.offset().fix().local_minus_utc();
    let zone = if secs == 0 {
        "UTC".to_owned()
    } else {
        let (sign, a) = if secs < 0 { ('-', -secs) } else { ('+', secs) };
        format!("GMT{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    };
    let n = t.naive_local();
    format!("{} {} {}", n.format("%a %b %d %H:%M:%S"), zone, n.format("%Y"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn du_lines() {
        let rows = vec![s("0", "0", "/a/empty"), s("1048576", "3145728", "/a/big"), s("12", "36", "/a/f")];
        assert_eq!(
            format_du(&rows, false),
            vec!["0        0        /a/empty", "1048576  3145728  /a/big", "12       36       /a/f"]
        );
        assert_eq!(
            format_du(&rows[2..], true),
            vec![
                "SIZE  DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS  FULL_PATH_NAME",
                "12    36                                     /a/f",
            ]
        );
        assert!(format_du(&[], true).is_empty());
        let human = vec![s(&crate::format::human_bytes(1536), &crate::format::human_bytes(4608), "x")];
        assert_eq!(format_du(&human, false), vec!["1.5 K  4.5 K  x"]);
    }

    #[test]
    fn df_lines() {
        assert_eq!(
            format_df("hdfs://127.0.0.1:9000", 1000, 250, 700, 1, false),
            vec![
                "Filesystem             Size  Used  Available  Use%",
                "hdfs://127.0.0.1:9000  1000   250        700   25%",
            ]
        );
        // 2.5% rounds half up like Java.
        assert_eq!(format_df("hdfs://h:1", 1000, 25, 975, 1, false)[1], "hdfs://h:1  1000    25        975    3%");
        assert_eq!(format_df("hdfs://h:1", 0, 0, 0, 1, false)[1], "hdfs://h:1     0     0          0    0%");
        assert_eq!(
            format_df("hdfs://h:1", 3 << 30, 1 << 30, 2 << 30, 2, true),
            vec![
                "Filesystem  Size  Used  Available  Use%",
                "hdfs://h:1   3 G   1 G        2 G   33%",
                "hdfs://h:1   3 G   1 G        2 G   33%",
            ]
        );
    }

    #[test]
    fn java_numbers() {
        assert_eq!(java_fixed(2.5, 0), "3");
        assert_eq!(java_fixed(0.4, 0), "0");
        assert_eq!(java_fixed(99.5, 0), "100");
        assert_eq!(java_fixed(12.345, 2), "12.35");
        assert_eq!(java_fixed(0.0, 2), "0.00");
        assert_eq!(java_fixed(90.164, 2), "90.16");
        assert_eq!(java_float(100.0), "100.0");
        assert_eq!(java_float(100.0 / 3.0), "33.333332");
        assert_eq!(java_float(0.0), "0.0");
        assert_eq!(java_float(3.0), "3.0");
        assert_eq!(java_float(0.0001), "1.0E-4");
        assert_eq!(java_float(2.5e-4), "2.5E-4");
        assert_eq!(java_float(1.0e7), "1.0E7");
        assert_eq!(byte_desc(0), "0 B");
        assert_eq!(byte_desc(1023), "1023 B");
        assert_eq!(byte_desc(24576), "24 KB");
        assert_eq!(byte_desc(499_963_174_912), "465.63 GB");
        assert_eq!(byte_desc(450_760_462_336), "419.80 GB");
        assert_eq!(byte_desc(1536), "1.50 KB");
    }

    #[test]
    fn java_dates() {
        let t = Utc.timestamp_opt(1_795_363_614, 0).unwrap();
        assert_eq!(java_date(&t), "Sun Nov 22 16:06:54 UTC 2026");
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        assert_eq!(java_date(&t.with_timezone(&tz)), "Mon Nov 23 00:06:54 GMT+08:00 2026");
    }
}
