//! The FUSE mount of a Tusk file system (not built yet: issue 7).
