//! `tusk fs` (alias `tusk dfs`): the HDFS file system shell. Commands, flags, output and
//! exit codes follow `hdfs dfs`, so a Hadoop user's habits carry over: 0 on success, 1 when
//! any path failed (each failure printed as `cmd: message` on stderr), 255 on a usage error.
//!
//! `args` parses options the way Hadoop's CommandFormat does (`-R`, `-skipTrash`, ...: one
//! dash, no bundling), `glob` expands path patterns, `format` renders `-ls`, `-stat` and
//! `-count` exactly as Hadoop does, `mode` parses chmod/chown arguments, and `commands`
//! holds one function per command.

pub mod admin;
pub mod args;
mod commands;
mod copy;
mod data;
pub mod debug;
pub mod format;
pub mod fsck;
pub mod glob;
pub mod mode;
pub mod report;

use std::io::Write;
use tusk_client::{Client, ClientError};

/// Exit code of a usage error (Hadoop's FsShell returns -1).
pub const EXIT_USAGE: i32 = 255;

/// One command's usage line, as `hdfs dfs -help` prints it.
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
}

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "ls", usage: "[-d] [-h] [-R] [-u] [<path> ...]", help: "List the contents that match the specified file pattern." },
    CommandSpec { name: "mkdir", usage: "[-p] <path> ...", help: "Create a directory in specified location." },
    CommandSpec { name: "mv", usage: "<src> ... <dst>", help: "Move files that match the specified file pattern <src> to a destination <dst>." },
    CommandSpec { name: "rm", usage: "[-f] [-r|-R] [-skipTrash] [-safely] <src> ...", help: "Delete all files that match the specified file pattern." },
    CommandSpec { name: "rmdir", usage: "[--ignore-fail-on-non-empty] <dir> ...", help: "Removes the directory entry specified by each directory argument, provided it is empty." },
    CommandSpec { name: "touchz", usage: "<path> ...", help: "Creates a file of zero length at <path>. An error is returned if the file exists with non-zero length." },
    CommandSpec { name: "stat", usage: "[format] <path> ...", help: "Print statistics about the file/directory at <path> in the specified format (%a %A %b %F %g %n %o %r %u %x %X %y %Y; default %y)." },
    CommandSpec { name: "test", usage: "-[defswrz] <path>", help: "Answer various questions about <path>, with result via exit status." },
    CommandSpec { name: "count", usage: "[-q] [-h] [-v] <path> ...", help: "Count the number of directories, files and bytes under the paths that match the specified file pattern." },
    CommandSpec { name: "chmod", usage: "[-R] <MODE[,MODE]... | OCTALMODE> PATH...", help: "Changes permissions of a file." },
    CommandSpec { name: "chown", usage: "[-R] [OWNER][:[GROUP]] PATH...", help: "Changes owner and group of a file." },
    CommandSpec { name: "chgrp", usage: "[-R] GROUP PATH...", help: "This is equivalent to -chown ... :GROUP ..." },
    CommandSpec { name: "appendToFile", usage: "[-n] <localsrc> ... <dst>", help: "Appends the contents of all the given local files to the given dst file. The dst file will be created if it does not exist. If <localSrc> is -, then the input is read from stdin." },
    CommandSpec { name: "cat", usage: "[-ignoreCrc] <src> ...", help: "Fetch all files that match the file pattern <src> and display their content on stdout." },
    CommandSpec { name: "copyFromLocal", usage: "[-f] [-p] [-l] [-d] [-t <thread count>] [-q <thread pool queue size>] <localsrc> ... <dst>", help: "Copy files from the local file system into fs." },
    CommandSpec { name: "copyToLocal", usage: "[-f] [-p] [-crc] [-ignoreCrc] [-t <thread count>] [-q <thread pool queue size>] <src> ... <localdst>", help: "Identical to the -get command." },
    CommandSpec { name: "cp", usage: "[-f] [-p | -p[topax]] [-d] [-t <thread count>] [-q <thread pool queue size>] <src> ... <dst>", help: "Copy files that match the file pattern <src> to a destination." },
    CommandSpec { name: "df", usage: "[-h] [<path> ...]", help: "Shows the capacity, free and used space of the filesystem." },
    CommandSpec { name: "du", usage: "[-s] [-h] [-v] [-x] <path> ...", help: "Show the amount of space, in bytes, used by the files that match the specified file pattern." },
    CommandSpec { name: "get", usage: "[-f] [-p] [-crc] [-ignoreCrc] [-t <thread count>] [-q <thread pool queue size>] <src> ... <localdst>", help: "Copy files that match the file pattern <src> to the local name." },
    CommandSpec { name: "getmerge", usage: "[-nl] [-skip-empty-file] <src> <localdst>", help: "Get all the files in the directories that match the source file pattern and merge and sort them to only one file on local fs." },
    CommandSpec { name: "head", usage: "<file>", help: "Show the first 1KB of the file." },
    CommandSpec { name: "moveFromLocal", usage: "[-f] [-p] [-l] [-d] <localsrc> ... <dst>", help: "Same as -put, except that the source is deleted after it's copied." },
    CommandSpec { name: "put", usage: "[-f] [-p] [-l] [-d] [-t <thread count>] [-q <thread pool queue size>] <localsrc> ... <dst>", help: "Copy files from the local file system into fs." },
    CommandSpec { name: "setrep", usage: "[-R] [-w] <rep> <path> ...", help: "Set the replication level of a file. If <path> is a directory then the command recursively changes the replication factor of all files under the directory tree rooted at <path>." },
    CommandSpec { name: "tail", usage: "[-f] [-s <sleep interval>] <file>", help: "Show the last 1KB of the file." },
    CommandSpec { name: "help", usage: "[cmd ...]", help: "Displays help for given command or all commands if none is specified." },
    CommandSpec { name: "usage", usage: "[cmd ...]", help: "Displays the usage for given command or all commands if none is specified." },
];

/// Commands of `hdfs dfs` this build does not have yet.
const NOT_YET: &[&str] = &["text", "checksum", "truncate"];

pub fn usage_line(spec: &CommandSpec) -> String {
    format!("Usage: tusk fs [generic options] -{} {}", spec.name, spec.usage)
}

fn all_usage() -> String {
    let mut s = String::from("Usage: tusk fs [generic options]\n");
    for c in COMMANDS {
        s.push_str(&format!("\t[-{} {}]\n", c.name, c.usage));
    }
    s
}

/// Where a shell writes.
pub struct Io<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
}

/// A path as the user wrote it and as the namenode sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub shown: String,
    pub abs: String,
}

/// Runs one shell command (`argv[0]` is `-ls`, `-mkdir`, ...) against the namenode at
/// `namenode` as `user`; returns the exit code.
pub async fn run(
    argv: &[String],
    namenode: &str,
    user: &str,
    conf: &tusk_common::config::ClientConfig,
    io: &mut Io<'_>,
) -> i32 {
    let Some(first) = argv.first() else {
        let _ = write!(io.err, "{}", all_usage());
        return EXIT_USAGE;
    };
    let name = first.strip_prefix('-').unwrap_or(first);
    let args = &argv[1..];
    if name == "help" || name == "usage" {
        for c in COMMANDS.iter().filter(|c| args.is_empty() || args.iter().any(|a| a.trim_start_matches('-') == c.name))
        {
            let _ = writeln!(io.out, "-{} {}", c.name, c.usage);
            if name == "help" {
                let _ = writeln!(io.out, "\t{}\n", c.help);
            }
        }
        return 0;
    }
    if NOT_YET.contains(&name) {
        let _ = writeln!(io.err, "-{name}: not available yet in this Tusk build");
        return EXIT_USAGE;
    }
    let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
        let _ = writeln!(io.err, "{first}: Unknown command\n{}", all_usage());
        return EXIT_USAGE;
    };
    let parsed = match commands::parse(name, args) {
        Ok(p) => p,
        Err(msg) => {
            let _ = writeln!(io.err, "-{name}: {msg}\n{}", usage_line(spec));
            return EXIT_USAGE;
        }
    };
    if name == "setrep" {
        if let Err((number_error, msg)) = data::parse_replication(&parsed.operands[0]) {
            if number_error {
                let _ = writeln!(io.err, "setrep: Illegal replication, a positive integer expected");
            }
            let _ = writeln!(io.err, "-{name}: {msg}\n{}", usage_line(spec));
            return EXIT_USAGE;
        }
    }
    let client = match Client::connect(namenode, user, conf).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io.err, "{name}: {e}");
            return 1;
        }
    };
    let mut sh = Shell {
        client,
        name: name.to_owned(),
        failed: false,
        replication: conf.replication,
        block_size: conf.block_size,
    };
    match commands::dispatch(&mut sh, &parsed, io).await {
        Ok(code) => code,
        Err(msg) => {
            let _ = writeln!(io.err, "-{name}: {msg}\n{}", usage_line(spec));
            EXIT_USAGE
        }
    }
}

/// State of one command run.
pub struct Shell {
    pub client: Client,
    pub name: String,
    pub failed: bool,
    /// Replication and block size of files this command creates (0 = the namenode's
    /// default; set by `-D dfs.replication=N` / `-D dfs.blocksize=N`).
    pub replication: u32,
    pub block_size: u64,
}

impl Shell {
    /// Reports a failure on one path; the command goes on with the others.
    pub fn fail(&mut self, io: &mut Io<'_>, msg: impl std::fmt::Display) {
        self.failed = true;
        let _ = writeln!(io.err, "{}: {msg}", self.name);
    }

    /// Hadoop's per-path message for an error.
    pub fn path_error(shown: &str, e: &ClientError) -> String {
        match e {
            ClientError::NotFound(_) => format!("`{shown}': No such file or directory"),
            ClientError::AlreadyExists(_) => format!("`{shown}': File exists"),
            ClientError::IsDirectory(_) => format!("`{shown}': Is a directory"),
            ClientError::NotDirectory(_) | ClientError::ParentNotDirectory(_) => {
                format!("`{shown}': Is not a directory")
            }
            ClientError::NotEmpty(_) => format!("`{shown}': Directory is not empty"),
            other => other.to_string(),
        }
    }

    pub fn abs(&self, p: &str) -> String {
        tusk_common::path::absolutize(p, &self.client.home_dir())
    }

    /// Expands one argument (globs included) into existing-or-literal targets.
    pub async fn expand(&self, arg: &str) -> Result<Vec<Target>, ClientError> {
        if !glob::has_glob(arg) {
            return Ok(vec![Target { shown: arg.to_owned(), abs: self.abs(arg) }]);
        }
        let relative = !arg.starts_with('/') && !arg.contains("://");
        let home = self.client.home_dir();
        let mut found = Vec::new();
        for pattern in glob::expand_braces(arg) {
            let abs = self.abs(&pattern);
            let mut current = vec!["/".to_string()];
            for comp in abs.split('/').filter(|c| !c.is_empty()) {
                let mut next = Vec::new();
                for base in &current {
                    let join = |name: &str| if base == "/" { format!("/{name}") } else { format!("{base}/{name}") };
                    if glob::has_glob(comp) {
                        match self.client.list_all(base).await {
                            Ok((dir, entries)) if dir.file_type == tusk_client::FileType::Directory as i32 => {
                                next.extend(
                                    entries.iter().filter(|e| glob::matches(comp, &e.name)).map(|e| join(&e.name)),
                                );
                            }
                            Ok(_) | Err(ClientError::NotFound(_)) => {}
                            Err(e) => return Err(e),
                        }
                    } else {
                        next.push(join(comp));
                    }
                }
                current = next;
            }
            for p in current {
                if self.client.file_info(&p).await?.is_some() {
                    found.push(p);
                }
            }
        }
        found.sort();
        found.dedup();
        if found.is_empty() {
            return Err(ClientError::NotFound(arg.to_owned()));
        }
        Ok(found
            .into_iter()
            .map(|abs| {
                let shown = match abs.strip_prefix(&format!("{home}/")) {
                    Some(rest) if relative => rest.to_owned(),
                    _ => abs.clone(),
                };
                Target { shown, abs }
            })
            .collect())
    }
}
