//! WebHDFS query parameters: names are case-insensitive, values checked as Hadoop's
//! `*Param` classes do, with Hadoop's messages.

use crate::remote::RemoteException;
use std::collections::HashMap;

pub struct Params(HashMap<String, String>);

type R<T> = Result<T, RemoteException>;

fn invalid(name: &str, value: &str, why: &str) -> RemoteException {
    RemoteException::illegal_argument(format!("Invalid value for webhdfs parameter \"{name}\": {why} \"{value}\""))
}

impl Params {
    pub fn new(query: HashMap<String, String>) -> Params {
        Params(query.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> R<&str> {
        self.get(name).ok_or_else(|| {
            RemoteException::illegal_argument(format!(
                "Required param {name} for op: {} is null or empty",
                self.op_name()
            ))
        })
    }

    pub fn op_name(&self) -> String {
        self.get("op").unwrap_or("").to_ascii_uppercase()
    }

    /// The caller: `user.name`, else Hadoop's static web user.
    pub fn user(&self) -> String {
        self.get("user.name").unwrap_or("dr.who").to_owned()
    }

    pub fn bool(&self, name: &str, default: bool) -> R<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(name, v, "Failed to parse")),
        }
    }

    /// A non-negative long (offset, length, blocksize, newlength).
    pub fn u64(&self, name: &str) -> R<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n as u64)),
                Ok(_) => Err(invalid(name, v, "Invalid value: it must be >= 0:")),
                Err(_) => Err(invalid(name, v, "Failed to parse as a long:")),
            },
        }
    }

    /// A time in milliseconds; -1 means "leave unchanged".
    pub fn time(&self, name: &str) -> R<i64> {
        match self.get(name) {
            None => Ok(-1),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= -1 => Ok(n),
                _ => Err(invalid(name, v, "Failed to parse as a time:")),
            },
        }
    }

    pub fn replication(&self) -> R<Option<u32>> {
        match self.get("replication") {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=512).contains(&n) => Ok(Some(n)),
                _ => Err(invalid("replication", v, "Invalid value, it must be in [1, 512]:")),
            },
        }
    }

    /// Octal permission, at most 1777.
    pub fn permission(&self) -> R<Option<u32>> {
        match self.get("permission") {
            None => Ok(None),
            Some(v) => match u32::from_str_radix(v, 8) {
                Ok(n) if n <= 0o1777 => Ok(Some(n)),
                _ => Err(invalid("permission", v, "Failed to parse as a radix-8 short in [0, 1777]:")),
            },
        }
    }

    /// A buffer size: accepted and checked (positive), not needed by Tusk.
    pub fn check_buffersize(&self) -> R<()> {
        match self.get("buffersize") {
            Some(v) if !matches!(v.parse::<i32>(), Ok(n) if n > 0) => {
                Err(invalid("buffersize", v, "Invalid value, it must be > 0:"))
            }
            _ => Ok(()),
        }
    }
}

/// The path of a request: `/webhdfs/v1` + PATH; it must be absolute and clean.
pub fn fs_path(raw: &str) -> R<String> {
    let p = format!("/{}", raw.trim_start_matches('/'));
    let p = if p.len() > 1 { p.trim_end_matches('/').to_owned() } else { p };
    if p.split('/').any(|c| c == "." || c == "..") || p.contains("//") || p.contains('\0') {
        return Err(RemoteException::new("InvalidPathException", format!("Invalid path name {p}")));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn names_are_case_insensitive_and_values_checked() {
        let q = p(&[("OP", "liststatus"), ("Offset", "5"), ("length", "-1"), ("permission", "755")]);
        assert_eq!(q.op_name(), "LISTSTATUS");
        assert_eq!(q.u64("offset").unwrap(), Some(5));
        assert_eq!(q.u64("length").unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(q.permission().unwrap(), Some(0o755));
        assert!(p(&[("permission", "999")]).permission().is_err());
        assert!(p(&[("length", "99999999999999999999999")]).u64("length").is_err());
        assert_eq!(p(&[]).user(), "dr.who");
    }

    #[test]
    fn paths_must_be_clean() {
        assert_eq!(fs_path("a/b/").unwrap(), "/a/b");
        assert_eq!(fs_path("").unwrap(), "/");
        assert!(fs_path("a/../b").is_err());
        assert!(fs_path("a//b").is_err());
    }
}
