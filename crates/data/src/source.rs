//! Opening input files: plain or gzip (detected by its magic bytes, not by the name).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::{DataError, Location};

/// The first bytes of a gzip stream.
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path` for buffered reading, decompressing it when it starts with gzip's magic bytes
/// (1f 8b). Concatenated gzip members are read as one stream.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use std::io::{Read, Write};
/// let path = dir.path().join("x.gz");
/// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
/// gz.write_all(b"hello")?;
/// std::fs::write(&path, gz.finish()?)?;
/// let mut text = String::new();
/// mouton_data::open(&path)?.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, DataError> {
    let file = File::open(path)
        .map_err(|e| DataError::new(path, Location::File, format!("cannot open: {e}")))?;
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf
        .fill_buf()
        .map_err(|e| DataError::new(path, Location::File, format!("cannot read: {e}")))?;
    if head.starts_with(&GZIP_MAGIC) {
        let gz = flate2::bufread::MultiGzDecoder::new(buf);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Ok(Box::new(buf))
    }
}

/// A read error's message, calling a truncated gzip stream what it is.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        format!("truncated input (gzip stream or record cut short): {e}")
    } else {
        format!("read error: {e}")
    }
}
