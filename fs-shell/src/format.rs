//! Output formatting that must match Hadoop's `hdfs dfs` byte for byte.

use chrono::{Datelike, LocalResult, TimeZone, Timelike, Utc};
use std::fmt::Display;

/// What the shell needs to print about one path.
#[derive(Debug, Clone)]
pub struct StatView {
    pub is_dir: bool,
    pub length: u64,
    pub replication: u32, // 0 for directories
    pub block_size: u64,  // 0 for directories
    pub mtime_ms: i64,
    pub atime_ms: i64,
    pub permission: u16, // low 12 bits: sticky(0o1000) + rwxrwxrwx
    pub owner: String,
    pub group: String,
}

/// Header printed by `-count -v`.
pub const COUNT_HEADER: &str = "   DIR_COUNT   FILE_COUNT       CONTENT_SIZE PATHNAME";
/// Header printed by `-count -q -v`.
pub const COUNT_QUOTA_HEADER: &str = "       QUOTA       REM_QUOTA     SPACE_QUOTA REM_SPACE_QUOTA    DIR_COUNT   FILE_COUNT       CONTENT_SIZE PATHNAME";

/// Hadoop's `FsPermission.toString()` without the type char: "rwxr-xr-x".
fn symbolic(perm: u16) -> String {
    let mut s = String::with_capacity(9);
    for shift in [6u16, 3, 0] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    if perm & 0o1000 != 0 {
        s.pop();
        s.push(if perm & 1 != 0 { 't' } else { 'T' });
    }
    s
}

/// "drwxr-xr-x" / "-rw-r--r--", sticky shown as t/T like Hadoop.
pub fn permission_string(is_dir: bool, perm: u16) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    s.push_str(&symbolic(perm));
    s
}

/// `FsPermission.toOctal()`: the octal digits read as a decimal number,
/// so there are no leading zeros ("44" for 0o044).
fn to_octal(perm: u16) -> u32 {
    let n = u32::from(perm);
    ((n >> 9) & 1) * 1000 + ((n >> 6) & 7) * 100 + ((n >> 3) & 7) * 10 + (n & 7)
}

const SYMBOLS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];

/// `TraditionalBinaryPrefix.long2String(n, "", 1)` on a sign and magnitude.
fn human_mag(negative: bool, mag: u64) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if mag < 1024 {
        out.push_str(&mag.to_string());
        return out;
    }
    // Largest k (1..=6) with mag >= 1024^k.
    let mut k = 1usize;
    while k < SYMBOLS.len() && mag >= 1u64 << (10 * (k + 1)) {
        k += 1;
    }
    let shift = 10 * k as u32;
    if mag & ((1u64 << shift) - 1) == 0 {
        out.push_str(&(mag >> shift).to_string());
    } else {
        let mut s = crate::report::java_fixed(mag as f64 / (1u64 << shift) as f64, 1);
        if s.starts_with("1024") && k < SYMBOLS.len() {
            k += 1;
            s = crate::report::java_fixed(mag as f64 / (1u64 << (10 * k as u32)) as f64, 1);
        }
        out.push_str(&s);
    }
    out.push(' ');
    out.push(SYMBOLS[k - 1]);
    out
}

/// Hadoop's `long2String(n, "", 1)`: "1023", "1 K", "1.5 K", "128 M".
pub fn human_bytes(n: u64) -> String {
    human_mag(false, n)
}

fn human_i64(n: i64) -> String {
    human_mag(n < 0, n.unsigned_abs())
}

/// Java `String.length()` counts UTF-16 units; padding must too.
fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn pad_left(out: &mut String, s: &str, width: usize) {
    for _ in java_len(s)..width {
        out.push(' ');
    }
    out.push_str(s);
}

fn pad_right(out: &mut String, s: &str, width: usize) {
    out.push_str(s);
    for _ in java_len(s)..width {
        out.push(' ');
    }
}

/// `SimpleDateFormat` with "yyyy-MM-dd HH:mm[:ss]" in `tz`.
fn java_date<Tz: TimeZone>(ms: i64, tz: &Tz, seconds: bool) -> String {
    let dt = match tz.timestamp_millis_opt(ms) {
        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d,
        // Beyond chrono's range (~262000 years): nothing sane to print.
        LocalResult::None => return ms.to_string(),
    };
    let y = dt.year();
    // "yyyy" prints the year of era, so 1 BC is "0001".
    let year = if y <= 0 { 1 - i64::from(y) } else { i64::from(y) };
    let mut s = format!("{:04}-{:02}-{:02} {:02}:{:02}", year, dt.month(), dt.day(), dt.hour(), dt.minute());
    if seconds {
        s.push_str(&format!(":{:02}", dt.second()));
    }
    s
}

/// Hadoop `Ls` lines (modification time), one per entry.
pub fn format_ls<Tz: TimeZone>(entries: &[(StatView, String)], human: bool, tz: &Tz) -> Vec<String>
where
    Tz::Offset: Display,
{
    format_ls_time(entries, human, false, tz)
}

/// As `format_ls`, but `use_atime` shows access time (`ls -u`).
pub fn format_ls_time<Tz: TimeZone>(
    entries: &[(StatView, String)],
    human: bool,
    use_atime: bool,
    tz: &Tz,
) -> Vec<String>
where
    Tz::Offset: Display,
{
    let (mut max_repl, mut max_len, mut max_owner, mut max_group) = (3usize, 10usize, 0usize, 0usize);
    for (st, _) in entries {
        // Hadoop measures the raw replication and raw length even for
        // directories and even under -h.
        max_repl = max_repl.max(st.replication.to_string().len());
        max_len = max_len.max(st.length.to_string().len());
        max_owner = max_owner.max(java_len(&st.owner));
        max_group = max_group.max(java_len(&st.group));
    }
    entries
        .iter()
        .map(|(st, path)| {
            let mut line = permission_string(st.is_dir, st.permission);
            line.push(' '); // ACL marker: '+' in Hadoop when an ACL exists
            let repl = if st.is_dir { "-".to_string() } else { st.replication.to_string() };
            pad_left(&mut line, &repl, max_repl);
            line.push(' ');
            // Hadoop uses "%s" (no trailing space) when the column width is 0.
            if max_owner > 0 {
                pad_right(&mut line, &st.owner, max_owner);
                line.push(' ');
            } else {
                line.push_str(&st.owner);
            }
            if max_group > 0 {
                pad_right(&mut line, &st.group, max_group);
                line.push(' ');
            } else {
                line.push_str(&st.group);
            }
            let size = if human { human_bytes(st.length) } else { st.length.to_string() };
            pad_left(&mut line, &size, max_len);
            line.push(' ');
            let t = if use_atime { st.atime_ms } else { st.mtime_ms };
            line.push_str(&java_date(t, tz, false));
            line.push(' ');
            line.push_str(path);
            line
        })
        .collect()
}

/// Hadoop `Stat` output for one path; times are UTC.
pub fn format_stat(format: &str, st: &StatView, name: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Hadoop silently drops a trailing lone '%'.
        let Some(spec) = chars.next() else { break };
        match spec {
            'a' => out.push_str(&to_octal(st.permission).to_string()),
            'A' => out.push_str(&symbolic(st.permission)),
            'b' => out.push_str(&st.length.to_string()),
            'F' => out.push_str(if st.is_dir { "directory" } else { "regular file" }),
            'g' => out.push_str(&st.group),
            'n' => out.push_str(name),
            'o' => out.push_str(&st.block_size.to_string()),
            'r' => out.push_str(&st.replication.to_string()),
            'u' => out.push_str(&st.owner),
            'x' => out.push_str(&java_date(st.atime_ms, &Utc, true)),
            'X' => out.push_str(&st.atime_ms.to_string()),
            'y' => out.push_str(&java_date(st.mtime_ms, &Utc, true)),
            'Y' => out.push_str(&st.mtime_ms.to_string()),
            // Unknown specs (and "%%") print the char alone.
            other => out.push(other),
        }
    }
    out
}

fn size_str(n: u64, human: bool) -> String {
    if human {
        human_bytes(n)
    } else {
        n.to_string()
    }
}

fn size_str_i64(n: i64, human: bool) -> String {
    if human {
        human_i64(n)
    } else {
        n.to_string()
    }
}

/// Hadoop `Count` line: "%12s %12s %18s " then the path.
pub fn format_count(dirs: u64, files: u64, bytes: u64, path: &str, human: bool) -> String {
    format!("{:>12} {:>12} {:>18} {}", size_str(dirs, human), size_str(files, human), size_str(bytes, human), path)
}

/// Hadoop `Count -q` line. As in Hadoop 3's QuotaUsage, a name quota is
/// shown only when > 0 and a space quota only when >= 0; otherwise
/// "none"/"inf".
#[allow(clippy::too_many_arguments)]
pub fn format_count_quota(
    quota: i64,
    rem_quota: i64,
    space_quota: i64,
    rem_space: i64,
    dirs: u64,
    files: u64,
    bytes: u64,
    path: &str,
    human: bool,
) -> String {
    let (q, qr) = if quota > 0 {
        (size_str_i64(quota, human), size_str_i64(rem_quota, human))
    } else {
        ("none".to_string(), "inf".to_string())
    };
    let (sq, sqr) = if space_quota >= 0 {
        (size_str_i64(space_quota, human), size_str_i64(rem_space, human))
    } else {
        ("none".to_string(), "inf".to_string())
    };
    format!("{:>12} {:>15} {:>15} {:>15} {}", q, qr, sq, sqr, format_count(dirs, files, bytes, path, human))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn st(is_dir: bool, length: u64, repl: u32, perm: u16, owner: &str, group: &str, mtime: i64) -> StatView {
        StatView {
            is_dir,
            length,
            replication: repl,
            block_size: if is_dir { 0 } else { 134_217_728 },
            mtime_ms: mtime,
            atime_ms: 0,
            permission: perm,
            owner: owner.to_string(),
            group: group.to_string(),
        }
    }

    // 2026-11-22 15:30:00 UTC
    const T: i64 = 1_795_361_400_000;

    #[test]
    fn permission_strings() {
        assert_eq!(permission_string(true, 0o755), "drwxr-xr-x");
        assert_eq!(permission_string(false, 0o644), "-rw-r--r--");
        assert_eq!(permission_string(false, 0), "----------");
        assert_eq!(permission_string(true, 0o777), "drwxrwxrwx");
        assert_eq!(permission_string(true, 0o1777), "drwxrwxrwt");
        assert_eq!(permission_string(true, 0o1776), "drwxrwxrwT");
        assert_eq!(permission_string(false, 0o1000), "---------T");
        // Bits above 12 are ignored.
        assert_eq!(permission_string(false, 0o10644), "-rw-r--r--");
    }

    #[test]
    fn human_bytes_cases() {
        assert_eq!(human_bytes(0), "0");
        assert_eq!(human_bytes(1023), "1023");
        assert_eq!(human_bytes(1024), "1 K");
        assert_eq!(human_bytes(1025), "1.0 K");
        assert_eq!(human_bytes(1536), "1.5 K");
        // Exact tie: Java rounds HALF_UP.
        assert_eq!(human_bytes(1280), "1.3 K");
        assert_eq!(human_bytes(1152), "1.1 K"); // 1.125
        assert_eq!(human_bytes(128 * 1024 * 1024), "128 M");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 M");
        assert_eq!(human_bytes(1024 * 1024 - 60), "1023.9 K");
        assert_eq!(human_bytes(10 * 1024 * 1024 * 1024 + 1), "10.0 G");
        assert_eq!(human_bytes(1 << 40), "1 T");
        assert_eq!(human_bytes(1 << 50), "1 P");
        assert_eq!(human_bytes(1 << 60), "1 E");
        assert_eq!(human_bytes(3 << 59), "1.5 E");
        assert_eq!(human_bytes(u64::MAX), "16.0 E");
        assert_eq!(human_i64(i64::MIN), "-8 E");
        assert_eq!(human_i64(-1536), "-1.5 K");
        assert_eq!(human_i64(-5), "-5");
    }

    #[test]
    fn java_fixed1_rounding() {
        assert_eq!(crate::report::java_fixed(1.0, 1), "1.0");
        assert_eq!(crate::report::java_fixed(1.05, 1), "1.1");
        assert_eq!(crate::report::java_fixed(1.95, 1), "2.0");
        assert_eq!(crate::report::java_fixed(9.96, 1), "10.0");
        assert_eq!(crate::report::java_fixed(1023.95, 1), "1024.0");
        assert_eq!(crate::report::java_fixed(2.04, 1), "2.0");
    }

    #[test]
    fn ls_basic() {
        let e = vec![
            (st(true, 0, 0, 0o755, "alice", "supergroup", T), "/a".to_string()),
            (st(false, 0, 3, 0o644, "alice", "supergroup", T), "/a/f".to_string()),
        ];
        assert_eq!(
            format_ls(&e, false, &Utc),
            vec![
                "drwxr-xr-x   - alice supergroup          0 2026-11-22 15:30 /a",
                "-rw-r--r--   3 alice supergroup          0 2026-11-22 15:30 /a/f",
            ]
        );
    }

    #[test]
    fn ls_widths_grow() {
        let e = vec![
            (st(false, 12_345_678_901, 3, 0o644, "a", "g", 0), "/big".to_string()),
            (st(false, 5, 1000, 0o600, "verylongownername", "grp", 0), "/x".to_string()),
            (st(true, 0, 0, 0o1777, "hdfs", "supergroup", 0), "/tmp".to_string()),
        ];
        assert_eq!(
            format_ls(&e, false, &Utc),
            vec![
                "-rw-r--r--    3 a                 g          12345678901 1970-01-01 00:00 /big",
                "-rw------- 1000 verylongownername grp                  5 1970-01-01 00:00 /x",
                "drwxrwxrwt    - hdfs              supergroup           0 1970-01-01 00:00 /tmp",
            ]
        );
    }

    #[test]
    fn ls_human_keeps_raw_width() {
        let e = vec![
            (st(false, 134_217_728, 3, 0o644, "bob", "users", T), "/f".to_string()),
            (st(false, 1536, 2, 0o644, "bob", "users", T), "/g".to_string()),
            (st(false, 17, 1, 0o644, "bob", "users", T), "/h".to_string()),
        ];
        assert_eq!(
            format_ls(&e, true, &Utc),
            vec![
                "-rw-r--r--   3 bob users      128 M 2026-11-22 15:30 /f",
                "-rw-r--r--   2 bob users      1.5 K 2026-11-22 15:30 /g",
                "-rw-r--r--   1 bob users         17 2026-11-22 15:30 /h",
            ]
        );
    }

    #[test]
    fn ls_timezone_and_atime() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        let mut s = st(false, 1, 3, 0o644, "u", "g", T);
        s.atime_ms = 0;
        let e = vec![(s, "/f".to_string())];
        assert_eq!(format_ls(&e, false, &tz), vec!["-rw-r--r--   3 u g          1 2026-11-22 23:30 /f"]);
        assert_eq!(format_ls_time(&e, false, true, &tz), vec!["-rw-r--r--   3 u g          1 1970-01-01 08:00 /f"]);
    }

    #[test]
    fn ls_empty_owner_group_uses_no_padding() {
        let e = vec![(st(false, 1, 1, 0o644, "", "", 0), "/f".to_string())];
        assert_eq!(format_ls(&e, false, &Utc), vec!["-rw-r--r--   1          1 1970-01-01 00:00 /f"]);
        assert!(format_ls(&[], false, &Utc).is_empty());
    }

    #[test]
    fn ls_extreme_times_do_not_panic() {
        let e = vec![
            (st(false, 1, 1, 0o644, "u", "g", i64::MAX), "/a".to_string()),
            (st(false, 1, 1, 0o644, "u", "g", i64::MIN), "/b".to_string()),
            (st(false, 1, 1, 0o644, "u", "g", -1), "/c".to_string()),
        ];
        let out = format_ls(&e, false, &Utc);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2], "-rw-r--r--   1 u g          1 1969-12-31 23:59 /c");
    }

    #[test]
    fn stat_formats() {
        let mut f = st(false, 1234, 3, 0o644, "alice", "staff", T);
        f.atime_ms = 1000;
        assert_eq!(format_stat("%y", &f, "f"), "2026-11-22 15:30:00");
        assert_eq!(
            format_stat("%a %A %b %F %g %n %o %r %u", &f, "f.txt"),
            "644 rw-r--r-- 1234 regular file staff f.txt 134217728 3 alice"
        );
        assert_eq!(format_stat("%x|%X|%Y", &f, "f"), "1970-01-01 00:00:01|1000|1795361400000");
        let d = st(true, 0, 0, 0o1755, "hdfs", "supergroup", 0);
        assert_eq!(format_stat("%a %A %F %r %o %y", &d, "d"), "1755 rwxr-xr-t directory 0 0 1970-01-01 00:00:00");
        let d2 = st(true, 0, 0, 0o1754, "hdfs", "g", 0);
        assert_eq!(format_stat("%A", &d2, "d"), "rwxr-xr-T");
        let z = st(false, 0, 1, 0o044, "u", "g", 0);
        assert_eq!(format_stat("%a", &z, "z"), "44");
    }

    #[test]
    fn stat_escapes() {
        let f = st(false, 1, 1, 0o644, "u", "g", 0);
        assert_eq!(format_stat("100%%", &f, "f"), "100%");
        assert_eq!(format_stat("%q%Z", &f, "f"), "qZ");
        assert_eq!(format_stat("a%", &f, "f"), "a");
        assert_eq!(format_stat("%", &f, "f"), "");
        assert_eq!(format_stat("", &f, "f"), "");
        assert_eq!(format_stat("é%nü", &f, "名"), "é名ü");
        assert_eq!(format_stat("type=%F size=%b", &f, "f"), "type=regular file size=1");
    }

    #[test]
    fn count_lines() {
        assert_eq!(format_count(1, 2, 3, "/p", false), "           1            2                  3 /p");
        assert_eq!(
            format_count(5, 100, 134_217_728, "/data", true),
            "           5          100              128 M /data"
        );
        assert_eq!(format_count(2048, 1536, 0, "x", true), "         2 K        1.5 K                  0 x");
        assert_eq!(
            format_count(u64::MAX, 0, u64::MAX, "/", false),
            "18446744073709551615            0 18446744073709551615 /"
        );
    }

    #[test]
    fn count_quota_lines() {
        assert_eq!(
            format_count_quota(-1, -1, -1, -1, 1, 0, 0, "/q", false),
            "        none             inf            none             inf            1            0                  0 /q"
        );
        assert_eq!(
            format_count_quota(
                100,
                97,
                1_073_741_824,
                1_073_741_824 - 300,
                2,
                1,
                100,
                "/q",
                false
            ),
            "         100              97      1073741824      1073741524            2            1                100 /q"
        );
        // Hadoop 3: quota 0 is "none", space quota 0 is shown.
        assert_eq!(
            format_count_quota(0, 5, 0, -10, 1, 0, 0, "/q", false),
            "        none             inf               0             -10            1            0                  0 /q"
        );
        assert_eq!(
            format_count_quota(10240, 10239, 3 << 30, -1536, 1, 0, 0, "/q", true),
            "        10 K          10.0 K             3 G          -1.5 K            1            0                  0 /q"
        );
    }

    #[test]
    fn headers() {
        let h = format!("{:>12} {:>12} {:>18} PATHNAME", "DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE");
        assert_eq!(COUNT_HEADER, h);
        let q = format!("{:>12} {:>15} {:>15} {:>15} {}", "QUOTA", "REM_QUOTA", "SPACE_QUOTA", "REM_SPACE_QUOTA", h);
        assert_eq!(COUNT_QUOTA_HEADER, q);
    }
}
