//! What a containerd call can fail with. The codes callers act on (NOT_FOUND, ALREADY_EXISTS,
//! UNAVAILABLE, FAILED_PRECONDITION, INVALID_ARGUMENT) are variants of their own; the rest keep
//! containerd's code. Every variant names the verb (`op`, e.g. "task start c1").

use containerd_client::tonic::{Code, Status};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("containerd {op}: {msg}")]
    NotFound { op: String, msg: String },
    #[error("containerd {op}: {msg}")]
    AlreadyExists { op: String, msg: String },
    /// containerd is unreachable, or the connection broke mid-call.
    #[error("containerd {op}: {msg}")]
    Unavailable { op: String, msg: String },
    #[error("containerd {op}: {msg}")]
    FailedPrecondition { op: String, msg: String },
    #[error("containerd {op}: {msg}")]
    InvalidArgument { op: String, msg: String },
    /// Any other status from containerd (or the shim behind it), its code kept.
    #[error("containerd {op}: {msg}")]
    Other { op: String, code: Code, msg: String },
    /// The data handed to a streaming write failed (a download broke).
    #[error("{op}: {msg}")]
    Source { op: String, msg: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classify a tonic status from the call `op`.
    pub fn from_status(op: impl Into<String>, s: &Status) -> Error {
        let op = op.into();
        let msg = s.message().to_string();
        match s.code() {
            Code::NotFound => Error::NotFound { op, msg },
            Code::AlreadyExists => Error::AlreadyExists { op, msg },
            Code::Unavailable => Error::Unavailable { op, msg },
            // tonic reports a failed connect or a broken connection as Unknown with a transport error.
            Code::Unknown if msg.contains("transport error") => Error::Unavailable { op, msg },
            Code::FailedPrecondition => Error::FailedPrecondition { op, msg },
            Code::InvalidArgument => Error::InvalidArgument { op, msg },
            code => Error::Other { op, code, msg },
        }
    }

    /// The gRPC code this error stands for (UNAVAILABLE for a broken transport).
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::Unavailable { .. } => Code::Unavailable,
            Error::FailedPrecondition { .. } => Code::FailedPrecondition,
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::Other { code, .. } => *code,
            Error::Source { .. } => Code::Unavailable,
        }
    }

    /// containerd's message, without the verb.
    pub fn message(&self) -> &str {
        match self {
            Error::NotFound { msg, .. }
            | Error::AlreadyExists { msg, .. }
            | Error::Unavailable { msg, .. }
            | Error::FailedPrecondition { msg, .. }
            | Error::InvalidArgument { msg, .. }
            | Error::Other { msg, .. }
            | Error::Source { msg, .. } => msg,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists { .. })
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// The call failed without saying whether it took effect (containerd went away mid-call):
    /// the caller must ask containerd again before it judges.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Other { code, .. } => matches!(
                code,
                Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
            ),
            _ => false,
        }
    }

    /// A task whose shim died answers "ttrpc: closed" until containerd has cleaned up after it.
    pub(crate) fn is_shim_closed(&self) -> bool {
        matches!(self, Error::Other { code: Code::Unknown, msg, .. } if msg.contains("ttrpc: closed"))
    }

    /// An error of the kind `code` made here (the fake, a malformed answer).
    pub fn new(code: Code, op: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::from_status(op, &Status::new(code, msg.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_the_codes_callers_act_on() {
        let e = Error::from_status("task get c1", &Status::not_found("task c1 not found"));
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "containerd task get c1: task c1 not found");
        assert!(Error::from_status("x", &Status::already_exists("y")).is_already_exists());
        assert!(Error::from_status("x", &Status::unavailable("down")).is_unavailable());
        let broken = Status::unknown("transport error: connection reset");
        assert!(Error::from_status("x", &broken).is_unavailable());
        let other = Error::from_status("x", &Status::internal("boom"));
        assert_eq!(other.code(), Code::Internal);
        assert!(!other.outcome_unknown());
        assert!(Error::from_status("x", &Status::deadline_exceeded("t")).outcome_unknown());
        assert!(Error::from_status("x", &Status::unknown("ttrpc: closed")).is_shim_closed());
        assert_eq!(
            Error::new(Code::FailedPrecondition, "x", "y").code(),
            Code::FailedPrecondition
        );
    }
}
