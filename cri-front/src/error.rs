//! criusd's error type and its mapping onto gRPC status codes.

use crius_proto::tonic::{Code, Status};
use crius_sandboxer::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unavailable(String),
    /// The registry refused the credentials (or their absence).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
    /// A containerd call failed; the error names the verb.
    #[error(transparent)]
    Containerd(crius_ctrd::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sandbox(#[from] crius_sandboxer::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crius_ctrd::Error> for Error {
    fn from(e: crius_ctrd::Error) -> Self {
        match e {
            // Not containerd's: the download feeding a content write broke (a registry problem).
            crius_ctrd::Error::Source { .. } => Error::Unavailable(e.to_string()),
            e => Error::Containerd(e),
        }
    }
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::Containerd(e) => e.is_not_found(),
            Error::Sandbox(e) => *e.kind() == ErrorKind::NotFound,
            _ => false,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Error::Config(_) | Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Internal(_) | Error::Io { .. } => Code::Internal,
            Error::Containerd(e) => match e.code() {
                // containerd being down (or the connection to it broken) is the caller's
                // retryable problem.
                Code::Unavailable => Code::Unavailable,
                Code::NotFound => Code::NotFound,
                Code::AlreadyExists => Code::AlreadyExists,
                Code::FailedPrecondition => Code::FailedPrecondition,
                Code::InvalidArgument => Code::InvalidArgument,
                _ => Code::Internal,
            },
            Error::Sandbox(e) => match e.kind() {
                ErrorKind::NotFound => Code::NotFound,
                ErrorKind::AlreadyExists { .. } => Code::AlreadyExists,
                ErrorKind::InvalidArgument => Code::InvalidArgument,
                ErrorKind::FailedPrecondition => Code::FailedPrecondition,
                ErrorKind::Unavailable => Code::Unavailable,
                ErrorKind::Unimplemented => Code::Unimplemented,
                ErrorKind::Internal => Code::Internal,
            },
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = match &e {
            Error::Sandbox(s) => match s.kind() {
                ErrorKind::AlreadyExists { existing_id } => {
                    format!("{e} (held by pod sandbox {existing_id})")
                }
                _ => e.to_string(),
            },
            _ => e.to_string(),
        };
        Status::new(e.code(), msg)
    }
}

/// Add context to io results.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::NotFound("x".into()).code(), Code::NotFound);
        let e = Error::from(crius_ctrd::Error::new(Code::NotFound, "get", "nope"));
        assert!(e.is_not_found());
        assert_eq!(e.code(), Code::NotFound);
        let s: Status = Error::Unimplemented("later".into()).into();
        assert_eq!(s.code(), Code::Unimplemented);
    }
}
