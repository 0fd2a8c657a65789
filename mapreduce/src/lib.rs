//! MapReduce v1: jobtracker and tasktrackers (not built yet: issue 6).
