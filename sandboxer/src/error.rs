//! The sandboxer's error: a kind criusd maps to a gRPC code, the pod and the
//! step that failed, and the cause.

use std::fmt;

/// What criusd maps to a gRPC status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists { existing_id: String },
    InvalidArgument,
    FailedPrecondition,
    Unavailable,
    Unimplemented,
    Internal,
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    pod: Option<String>,
    step: String,
    message: String,
    #[source]
    source: Option<Cause>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, step: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind,
            pod: None,
            step: step.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for an Internal error with a cause.
    pub fn internal(step: impl Into<String>, source: impl Into<Cause>) -> Self {
        Error::new(ErrorKind::Internal, step, "").with_source(source)
    }

    pub fn not_found(pod: &str) -> Self {
        Error::new(ErrorKind::NotFound, "lookup", "no such pod sandbox").pod(pod)
    }

    pub fn with_source(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Name the pod this error is about (kept if already named).
    pub fn pod(mut self, id: &str) -> Self {
        if self.pod.is_none() {
            self.pod = Some(id.to_string());
        }
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub fn step(&self) -> &str {
        &self.step
    }

    pub fn pod_id(&self) -> Option<&str> {
        self.pod.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pod) = &self.pod {
            write!(f, "pod {pod}: ")?;
        }
        write!(f, "{}", self.step)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}
