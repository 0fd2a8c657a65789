//! The checkpointer (secondary namenode) that merges fsimage and edits (not built yet: issue 4).
