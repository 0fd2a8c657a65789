//! Identity in HDFS "simple" mode: the client says who it is (`TUSK_USER`, else
//! `HADOOP_USER_NAME`, else the OS user), and group membership is looked up on the
//! namenode's host, as Hadoop's ShellBasedUnixGroupsMapping does.

use nix::unistd::{Gid, Group, Uid, User};

/// The user name a client acts as.
pub fn current_user() -> String {
    for var in ["TUSK_USER", "HADOOP_USER_NAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    os_user_name()
}

/// The OS user running this process.
pub fn os_user_name() -> String {
    match User::from_uid(Uid::effective()) {
        Ok(Some(u)) => u.name,
        _ => std::env::var("USER").unwrap_or_else(|_| format!("uid{}", Uid::effective())),
    }
}

/// The groups `user` belongs to on this host (primary first); empty for unknown users.
pub fn groups_of(user: &str) -> Vec<String> {
    let Ok(Some(u)) = User::from_name(user) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(Some(g)) = Group::from_gid(u.gid) {
        out.push(g.name);
    }
    if let Ok(cname) = std::ffi::CString::new(user) {
        if let Ok(gids) = nix::unistd::getgrouplist(&cname, u.gid) {
            for gid in gids {
                if gid == u.gid {
                    continue;
                }
                if let Ok(Some(g)) = Group::from_gid(Gid::from_raw(gid.as_raw())) {
                    if !out.contains(&g.name) {
                        out.push(g.name);
                    }
                }
            }
        }
    }
    out
}

/// True for names HDFS would accept as a user or group.
pub fn valid_principal(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$'))
}
