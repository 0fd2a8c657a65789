//! Permission checks in HDFS "simple" mode, after HDFS's FSPermissionChecker: the caller is
//! who it says it is, the namenode's own user and members of the superuser group pass every
//! check, and everyone else gets POSIX owner/group/other bits (plus the sticky bit on
//! directories for delete and rename).

use crate::error::NnError;
use crate::inode::{InodeIdx, Kind};
use crate::namespace::{Namespace, Resolved};
use std::sync::Arc;

/// rwx bits, as HDFS's FsAction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(pub u16);

impl Access {
    pub const READ: Access = Access(4);
    pub const WRITE: Access = Access(2);
    pub const EXECUTE: Access = Access(1);
    pub const READ_EXECUTE: Access = Access(5);
    pub const WRITE_EXECUTE: Access = Access(3);
    pub const ALL: Access = Access(7);

    fn name(self) -> &'static str {
        match self.0 {
            0 => "NONE",
            1 => "EXECUTE",
            2 => "WRITE",
            3 => "WRITE_EXECUTE",
            4 => "READ",
            5 => "READ_EXECUTE",
            6 => "READ_WRITE",
            _ => "ALL",
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Shared so that a cached caller is handed out without copying strings.
    pub user: Arc<str>,
    pub groups: Arc<Vec<String>>,
    pub superuser: bool,
}

/// "drwxr-x---" style string of an inode, for messages.
pub fn mode_string(is_dir: bool, perm: u16) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        if shift == 0 && perm & 0o1000 != 0 {
            s.push(if x { 't' } else { 'T' });
        } else {
            s.push(if x { 'x' } else { '-' });
        }
    }
    s
}

/// What one operation needs, as in FSPermissionChecker.checkPermission.
#[derive(Debug, Default, Clone, Copy)]
pub struct Need {
    /// The caller must own the target.
    pub owner: bool,
    /// Access on the deepest existing ancestor of the target.
    pub ancestor: Option<Access>,
    /// Access on the target's parent.
    pub parent: Option<Access>,
    /// Access on the target itself.
    pub target: Option<Access>,
    /// Access on every directory of the target's subtree.
    pub subtree: Option<Access>,
}

impl Caller {
    fn has(&self, ns: &Namespace, i: InodeIdx, want: Access) -> bool {
        let ino = ns.inode(i);
        let bits = if ns.owner_name(i) == &*self.user {
            (ino.perm >> 6) & 7
        } else if self.groups.iter().any(|g| g == ns.group_name(i)) {
            (ino.perm >> 3) & 7
        } else {
            ino.perm & 7
        };
        bits & want.0 == want.0
    }

    fn denied(&self, ns: &Namespace, i: InodeIdx, want: Access) -> NnError {
        let ino = ns.inode(i);
        NnError::PermissionDenied(format!(
            "Permission denied: user={}, access={}, inode=\"{}\":{}:{}:{}",
            self.user,
            want.name(),
            ns.path_of(i),
            ns.owner_name(i),
            ns.group_name(i),
            mode_string(ino.is_dir(), ino.perm)
        ))
    }

    fn require(&self, ns: &Namespace, i: InodeIdx, want: Access) -> Result<(), NnError> {
        if self.has(ns, i, want) {
            Ok(())
        } else {
            Err(self.denied(ns, i, want))
        }
    }

    /// EXECUTE on a directory passed through on the way to a target (see
    /// [`Namespace::lookup_through`]).
    pub fn check_traverse(&self, ns: &Namespace, dir: InodeIdx) -> Result<(), NnError> {
        if self.superuser {
            return Ok(());
        }
        self.require(ns, dir, Access::EXECUTE)
    }

    /// `want` on one inode (the superuser has every access).
    pub fn check_access(&self, ns: &Namespace, i: InodeIdx, want: Access) -> Result<(), NnError> {
        if self.superuser {
            return Ok(());
        }
        self.require(ns, i, want)
    }

    /// Checks `need` against a resolved path. Every existing directory before the target
    /// must be traversable (EXECUTE).
    pub fn check(&self, ns: &Namespace, res: &Resolved, need: Need) -> Result<(), NnError> {
        if self.superuser {
            return Ok(());
        }
        let n = res.inodes.len();
        for ino in res.inodes.iter().take(n - 1) {
            match ino {
                Some(i) if ns.inode(*i).is_dir() => self.require(ns, *i, Access::EXECUTE)?,
                _ => break,
            }
        }
        if let Some(a) = need.ancestor {
            let (_, anc) = res.last_existing_ancestor();
            self.require(ns, anc, a)?;
        }
        if let (Some(a), Some(p)) = (need.parent, res.parent()) {
            self.require(ns, p, a)?;
        }
        if let Some(t) = res.last() {
            if need.owner && ns.owner_name(t) != &*self.user {
                return Err(NnError::PermissionDenied(format!(
                    "Permission denied. user={} is not the owner of inode={}",
                    self.user,
                    ns.path_of(t)
                )));
            }
            if let Some(a) = need.target {
                self.require(ns, t, a)?;
            }
            if let Some(a) = need.subtree {
                let mut result = Ok(());
                ns.walk(t, |i, ino| {
                    if result.is_ok() {
                        if let Kind::Dir(children) = &ino.kind {
                            // HDFS skips empty directories for delete (ignoreEmptyDir).
                            if !children.is_empty() || i == t {
                                if let Err(e) = self.require(ns, i, a) {
                                    result = Err(e);
                                }
                            }
                        }
                    }
                });
                result?;
            }
        }
        Ok(())
    }

    /// The sticky-bit rule for removing or renaming `target` out of its parent: with the
    /// sticky bit set on the parent, only the owner of the target or of the parent may.
    pub fn check_sticky(&self, ns: &Namespace, res: &Resolved) -> Result<(), NnError> {
        if self.superuser {
            return Ok(());
        }
        let (Some(parent), Some(target)) = (res.parent(), res.last()) else {
            return Ok(());
        };
        if ns.inode(parent).perm & 0o1000 == 0 {
            return Ok(());
        }
        if ns.owner_name(parent) == &*self.user || ns.owner_name(target) == &*self.user {
            return Ok(());
        }
        Err(NnError::PermissionDenied(format!(
            "Permission denied by sticky bit: user={}, path=\"{}\":{}:{}:{}, parent=\"{}\":{}:{}:{}",
            self.user,
            ns.path_of(target),
            ns.owner_name(target),
            ns.group_name(target),
            mode_string(ns.inode(target).is_dir(), ns.inode(target).perm),
            ns.path_of(parent),
            ns.owner_name(parent),
            ns.group_name(parent),
            mode_string(true, ns.inode(parent).perm),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(true, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(false, 0o640), "-rw-r-----");
        assert_eq!(mode_string(true, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(true, 0o1770), "drwxrwx--T");
    }
}
