//! Hadoop-style path globs: `*`, `?`, `[abc]`, `[a-z]`, `[^a]` within one component, and
//! `{a,b}` alternatives (expanded first). Matching is per component, so `*` never crosses
//! a `/`.

/// True when `s` holds a glob character.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Expands `{a,b}` alternatives (nested allowed) into plain patterns.
pub fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let Some(open) = pattern.find('{') else { return vec![pattern.to_owned()] };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else { return vec![pattern.to_owned()] };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut alts = Vec::new();
    let mut start = open + 1;
    for c in commas.into_iter().chain(std::iter::once(close)) {
        alts.push(&pattern[start..c]);
        start = c + 1;
    }
    let mut out = Vec::new();
    for alt in alts {
        out.extend(expand_braces(&format!("{head}{alt}{tail}")));
    }
    out
}

/// Matches one path component against a brace-free pattern.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, 0, &n, 0)
}

fn match_from(p: &[char], mut pi: usize, n: &[char], mut ni: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                // Try every split; components are short.
                return (ni..=n.len()).any(|k| match_from(p, pi + 1, n, k));
            }
            '?' => {
                if ni >= n.len() {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
            '[' => {
                let Some(len) = p[pi..].iter().position(|&c| c == ']') else {
                    return ni < n.len() && n[ni] == '[' && match_from(p, pi + 1, n, ni + 1);
                };
                if ni >= n.len() {
                    return false;
                }
                let class = &p[pi + 1..pi + len];
                let (negate, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let c = n[ni];
                let mut hit = false;
                let mut k = 0;
                while k < class.len() {
                    if k + 2 < class.len() && class[k + 1] == '-' {
                        hit |= class[k] <= c && c <= class[k + 2];
                        k += 3;
                    } else {
                        hit |= class[k] == c;
                        k += 1;
                    }
                }
                if hit == negate {
                    return false;
                }
                pi += len + 1;
                ni += 1;
            }
            '\\' if pi + 1 < p.len() => {
                if ni >= n.len() || n[ni] != p[pi + 1] {
                    return false;
                }
                pi += 2;
                ni += 1;
            }
            c => {
                if ni >= n.len() || n[ni] != c {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
        }
    }
    ni == n.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces() {
        assert_eq!(expand_braces("/a/{x,y}/z"), ["/a/x/z", "/a/y/z"]);
        assert_eq!(expand_braces("{a,b{c,d}}"), ["a", "bc", "bd"]);
        assert_eq!(expand_braces("/plain"), ["/plain"]);
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "anything"));
        assert!(matches("part-*", "part-00001"));
        assert!(!matches("part-*", "_SUCCESS"));
        assert!(matches("f?le", "file"));
        assert!(!matches("f?le", "fle"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[^a-c]x", "bx"));
        assert!(matches("*.txt", ".txt"));
        assert!(!matches("a*b", "acbc"));
    }
}
