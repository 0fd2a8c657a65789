//! The datanode: replicated, checksummed block storage (not built yet: issue 3).
