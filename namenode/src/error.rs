//! The namenode's errors: what a caller branches on. Each maps to one gRPC code and one
//! Hadoop exception class name (sent as `tusk-exception` metadata) in `service.rs`.

use tusk_common::path::InvalidPath;

#[derive(Debug, Clone, thiserror::Error)]
pub enum NnError {
    #[error("File does not exist: {0}")]
    FileNotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A path component that should be a directory is a file.
    #[error("Parent path is not a directory: {0}")]
    ParentNotDirectory(String),
    #[error("{0} is not a directory")]
    NotDirectory(String),
    #[error("{0} is a directory")]
    IsDirectory(String),
    #[error("{0} is non empty")]
    NotEmpty(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    SafeMode(String),
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    #[error("{0}")]
    InvalidArgument(String),
    /// The file is being written by another client.
    #[error("{0}")]
    LeaseConflict(String),
    /// The file's lease is being recovered; try again later.
    #[error("{0}")]
    RecoveryInProgress(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// The edit log cannot be written: the namenode refuses every mutation.
    #[error("{0}")]
    Unavailable(String),
}

impl NnError {
    /// The Hadoop exception class a Hadoop client would see for this error.
    pub fn exception_class(&self) -> &'static str {
        match self {
            NnError::FileNotFound(_) => "FileNotFoundException",
            NnError::AlreadyExists(_) => "FileAlreadyExistsException",
            NnError::ParentNotDirectory(_) => "ParentNotDirectoryException",
            NnError::NotDirectory(_) => "PathIsNotDirectoryException",
            NnError::IsDirectory(_) => "PathIsDirectoryException",
            NnError::NotEmpty(_) => "PathIsNotEmptyDirectoryException",
            NnError::PermissionDenied(_) => "AccessControlException",
            NnError::SafeMode(_) => "SafeModeException",
            NnError::InvalidPath(_) => "InvalidPathException",
            NnError::InvalidArgument(_) => "IllegalArgumentException",
            NnError::LeaseConflict(_) => "AlreadyBeingCreatedException",
            NnError::RecoveryInProgress(_) => "RecoveryInProgressException",
            NnError::LimitExceeded(_) => "MaxDirectoryItemsExceededException",
            NnError::Unavailable(_) => "IOException",
        }
    }
}

pub type NnResult<T> = Result<T, NnError>;
