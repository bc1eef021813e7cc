//! A journal's failure as a value: which file, where, and the kind of I/O
//! error, kept when a stage fails because of it.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

/// A journal that failed: which file, where, and the kind of I/O error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct JournalFailure {
    /// The file or directory, where known.
    pub path: Option<PathBuf>,
    /// The byte offset in it, where known.
    pub offset: Option<u64>,
    /// The kind of I/O error (`InvalidData` for a damaged or unencodable record).
    #[serde(with = "error_kind")]
    pub kind: io::ErrorKind,
    /// What failed, as a sentence.
    pub message: String,
}

impl From<&super::DiskJournalError> for JournalFailure {
    fn from(error: &super::DiskJournalError) -> Self {
        use super::DiskJournalError as E;
        let (path, offset, kind) = match error {
            E::Io { path, source } => (Some(path.clone()), None, source.kind()),
            E::Corrupt { path, offset, .. } => (
                Some(path.clone()),
                Some(*offset),
                io::ErrorKind::InvalidData,
            ),
            E::NewerFormat { path, .. } | E::OlderFormat { path, .. } => {
                (Some(path.clone()), None, io::ErrorKind::InvalidData)
            }
            _ => (None, None, io::ErrorKind::InvalidData),
        };
        JournalFailure {
            path,
            offset,
            kind,
            message: error.to_string(),
        }
    }
}

impl From<super::JournalError> for JournalFailure {
    fn from(error: super::JournalError) -> Self {
        JournalFailure {
            path: None,
            offset: None,
            kind: io::ErrorKind::Other,
            message: error.to_string(),
        }
    }
}

/// `io::ErrorKind` as its name, for the system journal and the manifest.
mod error_kind {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::io::ErrorKind;

    const KINDS: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::AlreadyExists,
        ErrorKind::WouldBlock,
        ErrorKind::InvalidInput,
        ErrorKind::InvalidData,
        ErrorKind::TimedOut,
        ErrorKind::WriteZero,
        ErrorKind::Interrupted,
        ErrorKind::Unsupported,
        ErrorKind::UnexpectedEof,
        ErrorKind::OutOfMemory,
    ];

    pub(super) fn serialize<S: Serializer>(kind: &ErrorKind, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&format!("{kind:?}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<ErrorKind, D::Error> {
        let name = String::deserialize(input)?;
        Ok(KINDS
            .into_iter()
            .chain(more())
            .find(|kind| format!("{kind:?}") == name)
            .unwrap_or(ErrorKind::Other))
    }

    fn more() -> impl Iterator<Item = ErrorKind> {
        [
            ErrorKind::StorageFull,
            ErrorKind::ReadOnlyFilesystem,
            ErrorKind::NotADirectory,
            ErrorKind::IsADirectory,
            ErrorKind::DirectoryNotEmpty,
            ErrorKind::QuotaExceeded,
            ErrorKind::FileTooLarge,
            ErrorKind::InvalidFilename,
        ]
        .into_iter()
    }
}
