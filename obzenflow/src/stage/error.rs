//! The error a stage handler returns.

use crate::event::ErrorKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// How bad a handler's failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// This input failed and may succeed if tried again: it goes to the error
    /// lane (retry middleware can try it again first).
    Transient,
    /// This input is bad: it goes to the error lane and the stage goes on.
    Permanent,
    /// The stage cannot go on: it fails, and the flow with it.
    Fatal,
}

/// A failure of a stage handler. Any `std::error::Error` converts into a
/// permanent one with `?`, and is kept as its [`source`](StageError::source).
/// Two errors are equal when their severity and message are.
///
/// ```
/// use obzenflow::stage::{Severity, StageError};
///
/// fn parse(line: &str) -> Result<u32, StageError> {
///     Ok(line.trim().parse::<u32>()?)
/// }
/// assert_eq!(parse("x").unwrap_err().severity(), Severity::Permanent);
/// assert!(StageError::transient("timed out").is_transient());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageError {
    severity: Severity,
    message: String,
    /// What caused it, in memory only (it is not recorded in journals).
    #[serde(skip)]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    /// The input it failed on, as JSON text, for the error lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<String>,
}

impl PartialEq for StageError {
    fn eq(&self, other: &Self) -> bool {
        self.severity == other.severity && self.message == other.message
    }
}

impl Eq for StageError {}

impl StageError {
    /// A failure that may go away on retry.
    pub fn transient(message: impl fmt::Display) -> Self {
        Self::new(Severity::Transient, message)
    }

    /// A failure of this input only.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self::new(Severity::Permanent, message)
    }

    /// A failure that ends the stage and the flow.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::new(Severity::Fatal, message)
    }

    fn new(severity: Severity, message: impl fmt::Display) -> Self {
        StageError {
            severity,
            message: message.to_string(),
            source: None,
            input: None,
        }
    }

    /// The same failure, with the input it failed on kept for the error
    /// lane (as JSON text): a source that cannot decode a row keeps the row,
    /// so that a fixed copy can be driven through the flow again. (A stage
    /// with an input event keeps a copy of that event without being asked.)
    ///
    /// ```
    /// use obzenflow::stage::StageError;
    ///
    /// let error = StageError::permanent("line 7: no carrier").with_input("2013,1,1,,");
    /// assert_eq!(error.input(), Some(r#""2013,1,1,,""#));
    /// ```
    pub fn with_input(mut self, input: impl Serialize) -> Self {
        self.input = serde_json::to_string(&input).ok();
        self
    }

    /// The input it failed on, as JSON text, if it was kept.
    pub fn input(&self) -> Option<&str> {
        self.input.as_deref()
    }

    pub(crate) fn take_input(&mut self) -> Option<String> {
        self.input.take()
    }

    /// The same failure, with `source` kept as what caused it.
    ///
    /// ```
    /// use obzenflow::stage::StageError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space");
    /// let error = StageError::fatal("cannot write out.csv").with_source(io);
    /// assert_eq!(error.source().unwrap().to_string(), "no space");
    /// ```
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// How bad it is.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Whether a retry may help.
    pub fn is_transient(&self) -> bool {
        self.severity == Severity::Transient
    }

    /// What caused it, if it came from another error (by `?` or
    /// [`with_source`](Self::with_source)).
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind recorded in the error lane (fatal failures are not recorded there).
    pub(crate) fn lane_kind(&self) -> ErrorKind {
        match self.severity {
            Severity::Transient => ErrorKind::Transient,
            Severity::Permanent | Severity::Fatal => ErrorKind::Permanent,
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StageError {
    fn from(error: E) -> Self {
        StageError::permanent(&error).with_source(error)
    }
}
