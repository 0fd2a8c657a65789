//! The one place where Tusk paths are checked. A [`FsPath`] is absolute and normalized:
//! it starts with `/`, has no empty, `.` or `..` components, no NUL or `:` and stays within
//! the length limits below (HDFS's `dfs.namenode.fs-limits.*` defaults). Clients build
//! absolute paths with [`absolutize`]; the namenode accepts only what [`FsPath::parse`] does.

use std::fmt;

/// Longest component, in bytes (HDFS: max-component-length).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest path, in bytes (HDFS: 8000 characters).
pub const MAX_PATH_BYTES: usize = 8000;
/// Deepest path, in components (HDFS: max-path-depth 1000... it is INodesInPath's limit).
pub const MAX_PATH_DEPTH: usize = 1000;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid path name Invalid file name: {shown}{}", reason_suffix(.reason))]
pub struct InvalidPath {
    pub shown: String,
    pub reason: &'static str,
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

/// A validated absolute path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsPath(String);

impl FsPath {
    /// The root directory.
    pub fn root() -> Self {
        FsPath("/".to_owned())
    }

    /// Accepts exactly the normalized absolute form. A single trailing slash is allowed
    /// and dropped, as HDFS does.
    pub fn parse(raw: &str) -> Result<Self, InvalidPath> {
        // Built only on refusal: parsing is on every namenode call.
        let bad = |reason: &'static str| InvalidPath {
            shown: raw.chars().take(200).map(|c| if c == '\0' { '?' } else { c }).collect(),
            reason,
        };
        if raw.len() > MAX_PATH_BYTES {
            return Err(bad("path is longer than 8000 bytes"));
        }
        if !raw.starts_with('/') {
            return Err(bad("not an absolute path"));
        }
        if raw == "/" {
            return Ok(Self::root());
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let mut depth = 0;
        for comp in trimmed[1..].split('/') {
            depth += 1;
            validate_component(comp).map_err(bad)?;
        }
        if depth > MAX_PATH_DEPTH {
            return Err(bad("path is deeper than 1000 components"));
        }
        Ok(FsPath(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components after the root, in order (none for `/`).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The last component (`""` for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory (`None` for the root).
    pub fn parent(&self) -> Option<FsPath> {
        if self.is_root() {
            return None;
        }
        let idx = self.0.rfind('/').unwrap_or(0);
        Some(if idx == 0 { Self::root() } else { FsPath(self.0[..idx].to_owned()) })
    }

    /// `self/name`; `name` must be a valid component.
    pub fn join(&self, name: &str) -> Result<FsPath, InvalidPath> {
        let joined = if self.is_root() { format!("/{name}") } else { format!("{}/{name}", self.0) };
        FsPath::parse(&joined)
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &FsPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

/// Checks one path component.
pub fn validate_component(comp: &str) -> Result<(), &'static str> {
    if comp.is_empty() {
        return Err("empty path component");
    }
    if comp == "." || comp == ".." {
        return Err("'.' and '..' are not allowed as path components");
    }
    if comp.len() > MAX_COMPONENT_BYTES {
        return Err("a path component is longer than 255 bytes");
    }
    if comp.contains('\0') {
        return Err("NUL is not allowed in a path");
    }
    if comp.contains(':') {
        return Err("':' is not allowed in a path component");
    }
    Ok(())
}

impl fmt::Display for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Turns what a user typed into the absolute form the namenode expects, the way Hadoop's
/// `Path` does: a `hdfs://host:port` or `tusk://host:port` prefix is dropped, a relative path
/// is taken against `home` (`/user/<name>`), repeated slashes collapse and a trailing slash
/// goes. `.` and `..` are left for the namenode to refuse, as HDFS does.
pub fn absolutize(input: &str, home: &str) -> String {
    let mut s = input;
    for scheme in ["hdfs://", "tusk://", "webhdfs://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
        }
    }
    let joined = if s.starts_with('/') {
        s.to_owned()
    } else if s.is_empty() || s == "." {
        home.to_owned()
    } else {
        format!("{}/{}", home.trim_end_matches('/'), s)
    };
    let mut out = String::with_capacity(joined.len());
    for comp in joined.split('/').filter(|c| !c.is_empty()) {
        out.push('/');
        out.push_str(comp);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normal_paths() {
        assert_eq!(FsPath::parse("/").unwrap().as_str(), "/");
        let p = FsPath::parse("/a/b/c/").unwrap();
        assert_eq!(p.as_str(), "/a/b/c");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(p.name(), "c");
        assert_eq!(p.parent().unwrap().as_str(), "/a/b");
        assert_eq!(FsPath::parse("/a").unwrap().parent().unwrap().as_str(), "/");
        assert!(FsPath::root().parent().is_none());
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["", "a/b", "/a//b", "/a/./b", "/a/../b", "/..", "/a\0b", "/a:b"] {
            assert!(FsPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("/{}", "x".repeat(256));
        assert!(FsPath::parse(&long).unwrap_err().to_string().contains("255"));
        let deep = "/x".repeat(1001);
        assert!(FsPath::parse(&deep).is_err());
        let huge = format!("/{}", ["y"; 5000].join("/"));
        assert!(FsPath::parse(&huge).unwrap_err().to_string().contains("8000"));
        let e = FsPath::parse("/a/../b").unwrap_err().to_string();
        assert!(e.starts_with("Invalid path name Invalid file name: /a/../b"), "{e}");
    }

    #[test]
    fn within() {
        let a = FsPath::parse("/a").unwrap();
        assert!(FsPath::parse("/a/b").unwrap().is_within(&a));
        assert!(a.is_within(&a));
        assert!(!FsPath::parse("/ab").unwrap().is_within(&a));
        assert!(a.is_within(&FsPath::root()));
    }

    #[test]
    fn absolutize_like_hadoop_path() {
        assert_eq!(absolutize("x", "/user/al"), "/user/al/x");
        assert_eq!(absolutize("", "/user/al"), "/user/al");
        assert_eq!(absolutize(".", "/user/al"), "/user/al");
        assert_eq!(absolutize("//a///b/", "/user/al"), "/a/b");
        assert_eq!(absolutize("hdfs://nn:9000/a/b", "/user/al"), "/a/b");
        assert_eq!(absolutize("hdfs://nn:9000", "/user/al"), "/");
        assert_eq!(absolutize("/a/../b", "/h"), "/a/../b");
    }
}
