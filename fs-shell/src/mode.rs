//! Hadoop's `ChmodParser` and chown's `[owner][:group]` parser.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

/// One of the four mode segments (sticky, user, group, other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    op: Op,
    /// rwx in bits 0-2; bit 3 is 'X'.
    bits: u16,
}

// Hadoop's initial state: '+' with nothing, i.e. leave unchanged.
const KEEP: Segment = Segment { op: Op::Add, bits: 0 };

/// A parsed chmod mode, applied per file with [`ModeSpec::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSpec {
    sticky: Segment,
    user: Segment,
    group: Segment,
    other: Segment,
}

/// Java regex `\s`: [ \t\n\x0B\f\r].
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

struct Clause {
    who: String,
    op: Op,
    perms: String,
    has_comma: bool,
    end: usize,
}

/// Matches `\s*([ugoa]*)([+=-]+)([rwxXt]+)([,\s]*)\s*` at `start`.
/// The character classes are disjoint, so greedy scanning equals the regex.
fn match_clause(chars: &[char], start: usize) -> Option<Clause> {
    let mut i = start;
    let take = |i: &mut usize, f: &dyn Fn(char) -> bool| -> String {
        let mut s = String::new();
        while let Some(&c) = chars.get(*i) {
            if !f(c) {
                break;
            }
            s.push(c);
            *i += 1;
        }
        s
    };
    take(&mut i, &is_java_space);
    let who = take(&mut i, &|c| matches!(c, 'u' | 'g' | 'o' | 'a'));
    let ops = take(&mut i, &|c| matches!(c, '+' | '=' | '-'));
    // With several operators Hadoop keeps only the last one.
    let op = match ops.chars().last()? {
        '+' => Op::Add,
        '-' => Op::Remove,
        _ => Op::Set,
    };
    let perms = take(&mut i, &|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 't'));
    if perms.is_empty() {
        return None;
    }
    let sep = take(&mut i, &|c| c == ',' || is_java_space(c));
    Some(Clause { who, op, perms, has_comma: sep.contains(','), end: i })
}

fn parse_symbolic(chars: &[char]) -> Option<Option<ModeSpec>> {
    let first = match_clause(chars, 0)?;
    let mut spec = ModeSpec { sticky: KEEP, user: KEEP, group: KEEP, other: KEEP };
    let mut clause = first;
    loop {
        let (mut u, mut g, mut o) = (false, false, false);
        for c in clause.who.chars() {
            match c {
                'u' => u = true,
                'g' => g = true,
                'o' => o = true,
                _ => {}
            }
        }
        if !(u || g || o) {
            (u, g, o) = (true, true, true);
        }
        let mut bits = 0u16;
        let mut sticky = false;
        for c in clause.perms.chars() {
            match c {
                'r' => bits |= 4,
                'w' => bits |= 2,
                'x' => bits |= 1,
                'X' => bits |= 8,
                _ => sticky = true,
            }
        }
        // A later clause replaces, not merges with, an earlier one for the
        // same class: Hadoop's "u+r,u+w" adds only w.
        let seg = Segment { op: clause.op, bits };
        if u {
            spec.user = seg;
        }
        if g {
            spec.group = seg;
        }
        // The sticky bit is touched only by clauses that include others.
        if o {
            spec.other = seg;
            spec.sticky = Segment { op: clause.op, bits: u16::from(sticky) };
        }
        if clause.end >= chars.len() {
            return Some(Some(spec));
        }
        if !clause.has_comma {
            return Some(None);
        }
        match match_clause(chars, clause.end) {
            Some(next) => clause = next,
            None => return Some(None),
        }
    }
}

/// `^\s*[+]?([01]?)([0-7]{3})\s*$`
fn parse_octal(s: &str) -> Option<ModeSpec> {
    let t = s.trim_matches(is_java_space);
    let t = t.strip_prefix('+').unwrap_or(t);
    let d: Vec<u16> = t.chars().map(|c| c.to_digit(8).and_then(|v| u16::try_from(v).ok())).collect::<Option<_>>()?;
    let set = |bits| Segment { op: Op::Set, bits };
    let (sticky, rest) = match d.len() {
        3 => (KEEP, &d[..]),
        4 if d[0] <= 1 => (set(d[0]), &d[1..]),
        _ => return None,
    };
    Some(ModeSpec { sticky, user: set(rest[0]), group: set(rest[1]), other: set(rest[2]) })
}

/// Parses a chmod mode the way Hadoop's `ChmodParser` does: symbolic
/// clauses first, then octal `[+][01]NNN`. The error is the exact message
/// Hadoop's chmod throws (FsShell prints it after "-chmod: ").
pub fn parse_mode(s: &str) -> Result<ModeSpec, String> {
    let err = || format!("chmod : mode '{s}' does not match the expected pattern.");
    let chars: Vec<char> = s.chars().collect();
    // If the first symbolic clause matches, Hadoop never tries octal.
    match parse_symbolic(&chars) {
        Some(Some(spec)) => Ok(spec),
        Some(None) => Err(err()),
        None => parse_octal(s).ok_or_else(err),
    }
}

/// Hadoop's `combineModeSegments`.
fn combine(seg: Segment, existing: u16, exe_ok: bool) -> u16 {
    let mut mode = seg.bits;
    let cap_x = mode & 8 != 0;
    if cap_x {
        mode = (mode & !8) | 1;
    }
    mode = match seg.op {
        Op::Add => mode | existing,
        Op::Remove => !mode & existing,
        Op::Set => mode,
    };
    if cap_x && !exe_ok && mode & 1 != 0 && existing & 1 == 0 {
        mode &= !1;
    }
    mode & 7
}

impl ModeSpec {
    /// New 12-bit mode for a path whose current mode is `old`.
    pub fn apply(&self, old: u16, is_dir: bool) -> u16 {
        let old = old & 0o7777;
        let exe_ok = is_dir || old & 0o111 != 0;
        (combine(self.sticky, old >> 9, false) & 1) << 9
            | combine(self.user, (old >> 6) & 7, exe_ok) << 6
            | combine(self.group, (old >> 3) & 7, exe_ok) << 3
            | combine(self.other, old & 7, exe_ok)
    }
}

/// Hadoop's allowedChars for owner and group names (non-Windows).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@')
}

/// chgrp's GROUP, Hadoop's `^\s*([-_./@a-zA-Z0-9]+)\s*$`; the error is
/// Hadoop's exact message (no trailing period, unlike chown's).
pub fn parse_group(s: &str) -> Result<String, String> {
    let t = s.trim_matches(is_java_space);
    if t.is_empty() || !t.chars().all(name_char) {
        return Err(format!("'{s}' does not match expected pattern for group"));
    }
    Ok(t.to_string())
}

/// chown's `[owner][:group]`, Hadoop's pattern
/// `^\s*([-_./@a-zA-Z0-9]+)?([:]([-_./@a-zA-Z0-9]*))?\s*$`. An empty group
/// counts as absent. The error is Hadoop's exact message; FsShell prints it
/// after "-chown: ".
pub fn parse_owner_group(s: &str) -> Result<(Option<String>, Option<String>), String> {
    let err = || format!("'{s}' does not match expected pattern for [owner][:group].");
    let t = s.trim_matches(is_java_space);
    let (owner, group) = match t.split_once(':') {
        Some((o, g)) => (o, Some(g)),
        None => (t, None),
    };
    if !owner.chars().all(name_char) || !group.is_none_or(|g| g.chars().all(name_char)) {
        return Err(err());
    }
    let owner = (!owner.is_empty()).then(|| owner.to_string());
    let group = group.filter(|g| !g.is_empty()).map(str::to_string);
    if owner.is_none() && group.is_none() {
        return Err(err());
    }
    Ok((owner, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(m: &str, old: u16, dir: bool) -> u16 {
        parse_mode(m).expect(m).apply(old, dir)
    }

    #[test]
    fn octal() {
        assert_eq!(ap("750", 0o644, false), 0o750);
        assert_eq!(ap("0750", 0o1644, false), 0o750);
        assert_eq!(ap("1777", 0o755, true), 0o1777);
        assert_eq!(ap("000", 0o777, false), 0);
        assert_eq!(ap(" +644 ", 0o777, false), 0o644);
        assert_eq!(ap("+0750", 0o1777, false), 0o750);
        // Three digits leave the sticky bit alone, as in Hadoop.
        assert_eq!(ap("755", 0o1777, true), 0o1755);
        assert_eq!(ap("0755", 0o1777, true), 0o755);
    }

    #[test]
    fn octal_rejects() {
        for m in ["8", "7", "75", "2755", "7777", "77777", "758", "+", "++755", "0x755", "７５５"] {
            assert!(parse_mode(m).is_err(), "{m}");
        }
    }

    #[test]
    fn symbolic_basic() {
        assert_eq!(ap("u+x", 0o644, false), 0o744);
        assert_eq!(ap("go-w", 0o777, false), 0o755);
        assert_eq!(ap("a=r", 0o777, false), 0o444);
        assert_eq!(ap("=rw", 0o1777, true), 0o666);
        assert_eq!(ap("u=rwx,g=rx,o=r", 0o000, false), 0o754);
        assert_eq!(ap("ug+rw,o-rwx", 0o707, false), 0o760);
        assert_eq!(ap(" u+x , g+x ", 0o600, false), 0o710);
        assert_eq!(ap("u+x,", 0o600, false), 0o700);
        assert_eq!(ap("u+x,,g+w", 0o600, false), 0o720);
        assert_eq!(ap("u+-x", 0o700, false), 0o600); // last operator wins
        assert_eq!(ap("ugoa+r", 0, false), 0o444);
        // 'a' next to other letters adds nothing: "ua" is just "u".
        assert_eq!(ap("ua+x", 0o644, false), 0o744);
    }

    #[test]
    fn later_clause_replaces_earlier() {
        assert_eq!(ap("u+r,u+w", 0o000, false), 0o200);
        assert_eq!(ap("a+r,g-r", 0o000, false), 0o404);
    }

    #[test]
    fn sticky() {
        assert_eq!(ap("+t", 0o755, true), 0o1755);
        assert_eq!(ap("o+t", 0o755, true), 0o1755);
        assert_eq!(ap("o-t", 0o1777, true), 0o777);
        assert_eq!(ap("a-t", 0o1777, true), 0o777);
        // Only clauses with o/a touch the sticky bit.
        assert_eq!(ap("u+t", 0o755, true), 0o755);
        assert_eq!(ap("u-t", 0o1755, true), 0o1755);
        // "=" with others and no t clears it; "+"/"-" keep it.
        assert_eq!(ap("o=rx", 0o1777, true), 0o775);
        assert_eq!(ap("o+x", 0o1776, true), 0o1777);
        assert_eq!(ap("o=t", 0o777, true), 0o1770);
    }

    #[test]
    fn capital_x() {
        assert_eq!(ap("a+X", 0o644, false), 0o644);
        assert_eq!(ap("a+X", 0o644, true), 0o755);
        assert_eq!(ap("a+X", 0o744, false), 0o755);
        assert_eq!(ap("a=rX", 0o600, false), 0o444);
        assert_eq!(ap("a=rX", 0o600, true), 0o555);
        assert_eq!(ap("a=rX", 0o100, false), 0o555);
        assert_eq!(ap("a-X", 0o755, false), 0o644);
    }

    #[test]
    fn symbolic_rejects() {
        for m in [
            "",
            " ",
            "u+",
            "o=",
            "u=rwx,g=rx,o=",
            "u+q",
            "abc",
            "u+rw-x",
            "u+x g+w",
            "u+x,zz",
            "x+r",
            "u",
            ",u+x",
            "U+x",
            "u+x,750",
            "a+r\u{a0}",
        ] {
            assert!(parse_mode(m).is_err(), "{m:?}");
        }
        assert_eq!(parse_mode("abc").unwrap_err(), "chmod : mode 'abc' does not match the expected pattern.");
    }

    #[test]
    fn apply_ignores_high_bits() {
        assert_eq!(ap("u+x", 0o170644, false), 0o744);
    }

    #[test]
    fn no_panics_on_short_inputs() {
        let alpha = ['u', 'a', '+', '-', '=', 'r', 'X', 't', ',', ' ', '7', '1', ':', 'é', '\u{0B}'];
        let mut inputs = vec![String::new()];
        for _ in 0..3 {
            let prev = inputs.clone();
            for p in &prev {
                for c in alpha {
                    inputs.push(format!("{p}{c}"));
                }
            }
        }
        for s in &inputs {
            if let Ok(m) = parse_mode(s) {
                for old in [0, 0o644, 0o1777, 0xFFFF] {
                    assert!(m.apply(old, false) <= 0o7777);
                    assert!(m.apply(old, true) <= 0o7777);
                }
            }
            let _ = parse_owner_group(s);
            let _ = parse_group(s);
        }
    }

    #[test]
    fn group_only() {
        assert_eq!(parse_group("staff"), Ok("staff".to_string()));
        assert_eq!(parse_group(" a.b@c "), Ok("a.b@c".to_string()));
        for g in ["", " ", ":staff", "a:b", "a b", "grüp"] {
            assert!(parse_group(g).is_err(), "{g:?}");
        }
        assert_eq!(parse_group("a:b").unwrap_err(), "'a:b' does not match expected pattern for group");
    }

    #[test]
    fn owner_group() {
        let ok = |s: &str, o: Option<&str>, g: Option<&str>| {
            assert_eq!(parse_owner_group(s), Ok((o.map(str::to_string), g.map(str::to_string))), "{s}");
        };
        ok("alice", Some("alice"), None);
        ok("alice:staff", Some("alice"), Some("staff"));
        ok(":staff", None, Some("staff"));
        ok("alice:", Some("alice"), None);
        ok("  bob@EXAMPLE.COM:a_b-c.d/e  ", Some("bob@EXAMPLE.COM"), Some("a_b-c.d/e"));
        for s in ["", ":", "  ", "a:b:c", "a b", "a: b", "ali$e", "ü", "a:b c"] {
            assert!(parse_owner_group(s).is_err(), "{s:?}");
        }
        assert_eq!(
            parse_owner_group("a:b:c").unwrap_err(),
            "'a:b:c' does not match expected pattern for [owner][:group]."
        );
    }
}
