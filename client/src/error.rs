//! Typed client errors, rebuilt from the `tusk-exception` metadata the namenode attaches.

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    ParentNotDirectory(String),
    #[error("{0}")]
    NotDirectory(String),
    #[error("{0}")]
    IsDirectory(String),
    #[error("{0}")]
    NotEmpty(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    SafeMode(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LeaseConflict(String),
    /// The file's lease is being recovered: try again in a moment.
    #[error("{0}")]
    RecoveryInProgress(String),
    /// A namespace limit (items per directory, path length, quota) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The namenode will not hand out the next block until the previous one has a replica.
    #[error("{0}")]
    NotReplicatedYet(String),
    /// A data-plane failure (a datanode unreachable, a pipeline that failed) or an I/O error
    /// the namenode reported.
    #[error("{0}")]
    Io(String),
    /// No replica of a block could be read.
    #[error("{0}")]
    BlockMissing(String),
    /// The namenode could not be reached.
    #[error("{0}")]
    Connect(String),
    /// The namenode answered something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    pub(crate) fn from_status(addr: &str, s: tonic::Status) -> ClientError {
        let class = s.metadata().get("tusk-exception").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let msg = s.message().to_owned();
        match class.as_deref() {
            Some("FileNotFoundException") => ClientError::NotFound(msg),
            Some("FileAlreadyExistsException") => ClientError::AlreadyExists(msg),
            Some("ParentNotDirectoryException") => ClientError::ParentNotDirectory(msg),
            Some("PathIsNotDirectoryException") => ClientError::NotDirectory(msg),
            Some("PathIsDirectoryException") => ClientError::IsDirectory(msg),
            Some("PathIsNotEmptyDirectoryException") => ClientError::NotEmpty(msg),
            Some("AccessControlException") => ClientError::PermissionDenied(msg),
            Some("SafeModeException") => ClientError::SafeMode(msg),
            Some("InvalidPathException") => ClientError::InvalidPath(msg),
            Some("IllegalArgumentException") => ClientError::InvalidArgument(msg),
            Some("AlreadyBeingCreatedException") | Some("LeaseExpiredException") => ClientError::LeaseConflict(msg),
            Some("RecoveryInProgressException") => ClientError::RecoveryInProgress(msg),
            Some("MaxDirectoryItemsExceededException")
            | Some("PathComponentTooLongException")
            | Some("QuotaExceededException")
            | Some("NSQuotaExceededException")
            | Some("DSQuotaExceededException") => ClientError::LimitExceeded(msg),
            Some("NotReplicatedYetException") => ClientError::NotReplicatedYet(msg),
            Some("IOException") => ClientError::Io(msg),
            Some("BlockMissingException") => ClientError::BlockMissing(msg),
            Some(_) => ClientError::Other(msg),
            None => match s.code() {
                tonic::Code::Unavailable | tonic::Code::Unknown
                    if msg.contains("connect") || msg.contains("transport") =>
                {
                    ClientError::Connect(format!("Call to {addr} failed: {msg}"))
                }
                tonic::Code::Unavailable => ClientError::Connect(format!("Call to {addr} failed: {msg}")),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                    ClientError::Connect(format!("Call to {addr} timed out: {msg}"))
                }
                tonic::Code::InvalidArgument => ClientError::InvalidArgument(msg),
                _ => ClientError::Other(format!("{:?}: {msg}", s.code())),
            },
        }
    }
}
