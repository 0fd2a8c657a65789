//! Errors as WebHDFS answers them: a `RemoteException` JSON body with the Java class Hadoop
//! would name and the HTTP status Hadoop's `ExceptionHandler` gives that class.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tusk_client::ClientError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteException {
    pub status: StatusCode,
    /// Short class name, e.g. `FileNotFoundException`.
    pub exception: &'static str,
    pub java_class: &'static str,
    pub message: String,
}

impl RemoteException {
    pub fn new(exception: &'static str, message: impl Into<String>) -> RemoteException {
        let (java_class, status) = class_of(exception);
        RemoteException { status, exception, java_class, message: message.into() }
    }

    pub fn illegal_argument(message: impl Into<String>) -> RemoteException {
        RemoteException::new("IllegalArgumentException", message)
    }

    pub fn unsupported(message: impl Into<String>) -> RemoteException {
        RemoteException::new("UnsupportedOperationException", message)
    }

    pub fn not_found(message: impl Into<String>) -> RemoteException {
        RemoteException::new("FileNotFoundException", message)
    }

    pub fn io(message: impl Into<String>) -> RemoteException {
        RemoteException::new("IOException", message)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "RemoteException": {
                "exception": self.exception,
                "javaClassName": self.java_class,
                "message": self.message,
            }
        })
    }
}

/// Hadoop's class names, and the status its ExceptionHandler maps each to: FileNotFound 404,
/// other IOExceptions 403, IllegalArgument and UnsupportedOperation 400, the rest 500.
fn class_of(exception: &str) -> (&'static str, StatusCode) {
    use StatusCode as S;
    match exception {
        "FileNotFoundException" => ("java.io.FileNotFoundException", S::NOT_FOUND),
        "IllegalArgumentException" => ("java.lang.IllegalArgumentException", S::BAD_REQUEST),
        "UnsupportedOperationException" => ("java.lang.UnsupportedOperationException", S::BAD_REQUEST),
        "SecurityException" => ("java.lang.SecurityException", S::UNAUTHORIZED),
        "FileAlreadyExistsException" => ("org.apache.hadoop.fs.FileAlreadyExistsException", S::FORBIDDEN),
        "ParentNotDirectoryException" => ("org.apache.hadoop.fs.ParentNotDirectoryException", S::FORBIDDEN),
        "PathIsNotDirectoryException" => ("org.apache.hadoop.fs.PathIsNotDirectoryException", S::FORBIDDEN),
        "PathIsDirectoryException" => ("org.apache.hadoop.fs.PathIsDirectoryException", S::FORBIDDEN),
        "PathIsNotEmptyDirectoryException" => ("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", S::FORBIDDEN),
        "AccessControlException" => ("org.apache.hadoop.security.AccessControlException", S::FORBIDDEN),
        "SafeModeException" => ("org.apache.hadoop.hdfs.server.namenode.SafeModeException", S::FORBIDDEN),
        // An IllegalArgumentException in Hadoop (HadoopIllegalArgumentException).
        "InvalidPathException" => ("org.apache.hadoop.fs.InvalidPathException", S::BAD_REQUEST),
        "AlreadyBeingCreatedException" => {
            ("org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException", S::FORBIDDEN)
        }
        "RecoveryInProgressException" => ("org.apache.hadoop.hdfs.protocol.RecoveryInProgressException", S::FORBIDDEN),
        "FSLimitException" => ("org.apache.hadoop.hdfs.protocol.FSLimitException", S::FORBIDDEN),
        "NotReplicatedYetException" => {
            ("org.apache.hadoop.hdfs.server.namenode.NotReplicatedYetException", S::FORBIDDEN)
        }
        "BlockMissingException" => ("org.apache.hadoop.hdfs.BlockMissingException", S::FORBIDDEN),
        "IOException" => ("java.io.IOException", S::FORBIDDEN),
        _ => ("java.lang.RuntimeException", S::INTERNAL_SERVER_ERROR),
    }
}

impl From<ClientError> for RemoteException {
    fn from(e: ClientError) -> RemoteException {
        let class = match &e {
            ClientError::NotFound(_) => "FileNotFoundException",
            ClientError::AlreadyExists(_) => "FileAlreadyExistsException",
            ClientError::ParentNotDirectory(_) => "ParentNotDirectoryException",
            ClientError::NotDirectory(_) => "PathIsNotDirectoryException",
            ClientError::IsDirectory(_) => "PathIsDirectoryException",
            ClientError::NotEmpty(_) => "PathIsNotEmptyDirectoryException",
            ClientError::PermissionDenied(_) => "AccessControlException",
            ClientError::SafeMode(_) => "SafeModeException",
            ClientError::InvalidPath(_) => "InvalidPathException",
            ClientError::InvalidArgument(_) => "IllegalArgumentException",
            ClientError::LeaseConflict(_) => "AlreadyBeingCreatedException",
            ClientError::RecoveryInProgress(_) => "RecoveryInProgressException",
            ClientError::LimitExceeded(_) => "FSLimitException",
            ClientError::NotReplicatedYet(_) => "NotReplicatedYetException",
            ClientError::BlockMissing(_) => "BlockMissingException",
            ClientError::Io(_) | ClientError::Connect(_) | ClientError::Protocol(_) | ClientError::Other(_) => {
                "IOException"
            }
        };
        RemoteException::new(class, e.to_string())
    }
}

impl IntoResponse for RemoteException {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.json())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_hadoops_exception_handler() {
        assert_eq!(RemoteException::not_found("x").status, StatusCode::NOT_FOUND);
        assert_eq!(RemoteException::illegal_argument("x").status, StatusCode::BAD_REQUEST);
        assert_eq!(RemoteException::from(ClientError::PermissionDenied("no".into())).status, StatusCode::FORBIDDEN);
        let j = RemoteException::not_found("File does not exist: /a").json();
        assert_eq!(j["RemoteException"]["javaClassName"], "java.io.FileNotFoundException");
        assert_eq!(j["RemoteException"]["message"], "File does not exist: /a");
    }
}
