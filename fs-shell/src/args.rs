//! Hadoop's `CommandFormat` option parsing.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedArgs {
    pub flags: BTreeSet<String>,
    pub values: BTreeMap<String, String>,
    pub operands: Vec<String>,
}

/// Parses `args` like Hadoop's `CommandFormat.parse`. Options come first,
/// each a whole arg ("-rf" is one unknown option, not two). `cmd` is unused:
/// Hadoop's messages do not name the command (FsShell prefixes "-cmd: ").
/// `max_operands == usize::MAX` means unlimited.
pub fn parse_args(
    _cmd: &str,
    args: &[String],
    min_operands: usize,
    max_operands: usize,
    flags: &[&str],
    value_opts: &[&str],
) -> Result<ParsedArgs, String> {
    let mut out = ParsedArgs::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        // "-" alone is an operand (stdin).
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        if arg == "--" {
            i += 1;
            break;
        }
        let name = &arg[1..];
        if flags.contains(&name) {
            out.flags.insert(name.to_string());
            i += 1;
        } else if value_opts.contains(&name) {
            i += 1;
            // Hadoop takes the next arg as the value only if enough would be
            // left for the operands and it does not look like an option;
            // otherwise the value is "".
            let remaining = args.len() - i;
            let value = match args.get(i) {
                Some(v) if remaining > min_operands && !v.starts_with('-') => {
                    i += 1;
                    v.clone()
                }
                _ => String::new(),
            };
            out.values.insert(name.to_string(), value);
        } else {
            return Err(format!("Illegal option {arg}"));
        }
    }
    out.operands = args[i..].to_vec();
    let n = out.operands.len();
    if n < min_operands {
        return Err(format!("Not enough arguments: expected {min_operands} but got {n}"));
    }
    if n > max_operands {
        return Err(format!("Too many arguments: expected {max_operands} but got {n}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn p(a: &[&str], min: usize, max: usize) -> Result<ParsedArgs, String> {
        parse_args("ls", &v(a), min, max, &["R", "d", "h", "skipTrash", "q", "v"], &["t"])
    }

    fn flags(r: &ParsedArgs) -> Vec<&str> {
        r.flags.iter().map(String::as_str).collect()
    }

    #[test]
    fn flags_and_operands() {
        let r = p(&["-R", "-h", "/a", "/b"], 0, usize::MAX).unwrap();
        assert_eq!(flags(&r), ["R", "h"]);
        assert_eq!(r.operands, v(&["/a", "/b"]));
        assert!(r.values.is_empty());
        let r = p(&["-skipTrash", "-R", "-R", "/x"], 1, usize::MAX).unwrap();
        assert_eq!(flags(&r), ["R", "skipTrash"]);
        let r = p(&[], 0, usize::MAX).unwrap();
        assert_eq!(r, ParsedArgs::default());
    }

    #[test]
    fn options_stop_at_first_operand() {
        let r = p(&["-d", "/a", "-R"], 0, usize::MAX).unwrap();
        assert_eq!(flags(&r), ["d"]);
        assert_eq!(r.operands, v(&["/a", "-R"]));
    }

    #[test]
    fn double_dash_and_stdin() {
        let r = p(&["-R", "--", "-h", "/a"], 0, usize::MAX).unwrap();
        assert_eq!(flags(&r), ["R"]);
        assert_eq!(r.operands, v(&["-h", "/a"]));
        let r = p(&["-", "-R"], 0, usize::MAX).unwrap();
        assert!(r.flags.is_empty());
        assert_eq!(r.operands, v(&["-", "-R"]));
        let r = p(&["--"], 0, usize::MAX).unwrap();
        assert!(r.operands.is_empty());
    }

    #[test]
    fn unknown_and_combined_options() {
        assert_eq!(p(&["-x", "/a"], 0, usize::MAX).unwrap_err(), "Illegal option -x");
        assert_eq!(p(&["-Rh"], 0, usize::MAX).unwrap_err(), "Illegal option -Rh");
        assert_eq!(p(&["-r"], 0, usize::MAX).unwrap_err(), "Illegal option -r");
        assert_eq!(p(&["--R"], 0, usize::MAX).unwrap_err(), "Illegal option --R");
        assert_eq!(p(&["-skiptrash"], 0, usize::MAX).unwrap_err(), "Illegal option -skiptrash");
        assert_eq!(p(&["-R", "-é"], 0, usize::MAX).unwrap_err(), "Illegal option -é");
    }

    #[test]
    fn operand_counts() {
        assert_eq!(p(&["-R"], 1, usize::MAX).unwrap_err(), "Not enough arguments: expected 1 but got 0");
        assert_eq!(p(&["a"], 2, 2).unwrap_err(), "Not enough arguments: expected 2 but got 1");
        assert_eq!(p(&["a", "b", "c"], 1, 2).unwrap_err(), "Too many arguments: expected 2 but got 3");
        assert!(p(&["a", "b"], 2, 2).is_ok());
        // Unknown option is reported before counts.
        assert_eq!(p(&["-z"], 1, 1).unwrap_err(), "Illegal option -z");
    }

    #[test]
    fn value_options() {
        let r = p(&["-q", "-t", "SSD", "/p"], 1, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some("SSD"));
        assert_eq!(r.operands, v(&["/p"]));
        // Not consumed when it would starve the operands.
        let r = p(&["-t", "/p"], 1, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some(""));
        assert_eq!(r.operands, v(&["/p"]));
        // Not consumed when the next arg looks like an option.
        let r = p(&["-t", "-v", "/p"], 1, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some(""));
        assert_eq!(flags(&r), ["v"]);
        // At the end of args.
        let r = p(&["-t"], 0, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some(""));
        // Last occurrence wins.
        let r = p(&["-t", "a", "-t", "b", "/p"], 1, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some("b"));
        // "-" is never taken as a value.
        let r = p(&["-t", "-", "/p"], 1, usize::MAX).unwrap();
        assert_eq!(r.values.get("t").map(String::as_str), Some(""));
        assert_eq!(r.operands, v(&["-", "/p"]));
    }
}
