//! Inode numbers for paths. The namespace is path-based (as HDFS's), FUSE is inode-based:
//! every path the kernel has looked up gets a number, kept until the kernel forgets it; a
//! rename moves the numbers of the path and everything under it, so open files and the
//! kernel's dentries stay valid.

use std::collections::HashMap;

pub const ROOT: u64 = 1;

struct Node {
    path: String,
    /// Lookups the kernel holds (each `lookup`/`create`/`mkdir` reply adds one; `forget`
    /// takes them back).
    lookups: u64,
}

pub struct Inodes {
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut t = Inodes { by_ino: HashMap::new(), by_path: HashMap::new(), next: ROOT + 1 };
        t.by_ino.insert(ROOT, Node { path: "/".into(), lookups: 1 });
        t.by_path.insert("/".into(), ROOT);
        t
    }
}

/// `parent/name`.
pub fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Inodes {
    pub fn path(&self, ino: u64) -> Option<String> {
        self.by_ino.get(&ino).map(|n| n.path.clone())
    }

    /// The number of `path`, given to the kernel once more (a new one if it had none).
    pub fn lookup(&mut self, path: &str) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.lookups += 1;
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, Node { path: path.to_owned(), lookups: 1 });
        self.by_path.insert(path.to_owned(), ino);
        ino
    }

    /// The number of `path` if it has one (readdir: no lookup is taken).
    pub fn peek(&self, path: &str) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let gone = match self.by_ino.get_mut(&ino) {
            Some(node) => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            None => false,
        };
        if gone {
            if let Some(node) = self.by_ino.remove(&ino) {
                if self.by_path.get(&node.path) == Some(&ino) {
                    self.by_path.remove(&node.path);
                }
            }
        }
    }

    /// `from` (and everything under it) is now `to`; what `to` named before is gone.
    pub fn rename(&mut self, from: &str, to: &str) {
        self.by_path.remove(to);
        let prefix = format!("{from}/");
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        for (old, ino) in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            self.by_path.remove(&old);
            self.by_path.insert(new.clone(), ino);
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.path = new;
            }
        }
    }

    /// `path` was removed: its number stays valid for open handles but no longer names it.
    pub fn unlink(&mut self, path: &str) {
        self.by_path.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_paths_through_renames_and_forgets() {
        let mut t = Inodes::default();
        assert_eq!(t.path(ROOT).as_deref(), Some("/"));
        let d = t.lookup("/d");
        let f = t.lookup("/d/f");
        assert_eq!(t.lookup("/d"), d, "the same path, the same number");
        t.rename("/d", "/e");
        assert_eq!(t.path(f).as_deref(), Some("/e/f"));
        assert_eq!(t.path(d).as_deref(), Some("/e"));
        assert_eq!(t.peek("/d/f"), None);
        // "/ee" is not under "/e".
        let other = t.lookup("/ee");
        t.rename("/e", "/x");
        assert_eq!(t.path(other).as_deref(), Some("/ee"));
        t.forget(d, 1);
        assert!(t.path(d).is_some(), "one lookup left");
        t.forget(d, 1);
        assert!(t.path(d).is_none());
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a", "b"), "/a/b");
        t.unlink("/x/f");
        assert_eq!(t.peek("/x/f"), None);
        assert!(t.path(f).is_some(), "open handles keep their number");
    }
}
