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
    /// A containerd call failed; the step says which.
    #[error("containerd {step}: {}", .status.message())]
    Containerd { step: String, status: Status },
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

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn containerd(step: impl Into<String>, status: Status) -> Self {
        Error::Containerd {
            step: step.into(),
            status,
        }
    }

    /// True when containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::Containerd { status, .. } => status.code() == Code::NotFound,
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
            Error::Containerd { status, .. } => match status.code() {
                // containerd being down is the caller's retryable problem.
                Code::Unavailable => Code::Unavailable,
                // The connection to containerd broke mid-call (containerd died or restarts).
                Code::Unknown if status.message().contains("transport error") => Code::Unavailable,
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

/// Add a step name to containerd results.
pub trait CtrdContext<T> {
    fn step(self, step: &str) -> Result<T>;
}

impl<T> CtrdContext<T> for std::result::Result<T, Status> {
    fn step(self, step: &str) -> Result<T> {
        self.map_err(|s| Error::containerd(step, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::NotFound("x".into()).code(), Code::NotFound);
        let e = Error::containerd("get", Status::not_found("nope"));
        assert!(e.is_not_found());
        assert_eq!(e.code(), Code::NotFound);
        let s: Status = Error::Unimplemented("later".into()).into();
        assert_eq!(s.code(), Code::Unimplemented);
    }
}
