//! Errors of the data crate: every one names the file and where in it.

use std::path::PathBuf;

/// Where in a file a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a text file.
    Line(u64),
    /// Byte offset in a binary file (of the decompressed stream for gzip input).
    Offset(u64),
    /// The file as a whole (unreadable, bad header).
    File,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(l) => write!(f, ":{l}"),
            Location::Offset(o) => write!(f, " at byte {o}"),
            Location::File => Ok(()),
        }
    }
}

/// A problem reading or decoding Quick, Draw! data.
///
/// ```
/// use mouton_data::{DataError, Location};
/// let e = DataError::new("sheep.ndjson", Location::Line(3), "missing field `drawing`");
/// assert_eq!(e.to_string(), "sheep.ndjson:3: missing field `drawing`");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{}{location}: {message}", file.display())]
pub struct DataError {
    /// The file at fault.
    pub file: PathBuf,
    /// Where in it.
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

impl DataError {
    /// An error at `location` in `file`.
    pub fn new(file: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> Self {
        DataError {
            file: file.into(),
            location,
            message: message.into(),
        }
    }
}
