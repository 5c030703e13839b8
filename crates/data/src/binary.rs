//! Google's binary stroke format (`full/binary/*.bin`), read as a stream.
//!
//! Little-endian, no header; per record: key_id u64, countrycode 2 bytes, recognized u8,
//! timestamp u32, n_strokes u16; per stroke: n_points u16, then n_points x bytes, then
//! n_points y bytes. Coordinates are the simplified 0..=255 ones.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::source::{io_message, open, GZIP_MAGIC};
use crate::{DataError, Drawing, Location, Meta, Strokes, Timestamp};

/// Streams the drawings of a Google `.bin` file (plain or gzip); errors name the byte offset of
/// the record at fault.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("one.bin");
/// let mut rec = Vec::new();
/// rec.extend(42u64.to_le_bytes());
/// rec.extend(b"FR");
/// rec.push(1);
/// rec.extend(1_490_000_000u32.to_le_bytes());
/// rec.extend(1u16.to_le_bytes()); // one stroke
/// rec.extend(2u16.to_le_bytes()); // of two points
/// rec.extend([0, 255, 10, 20]); // x0 x1 y0 y1
/// std::fs::write(&path, &rec)?;
/// let d: Vec<_> = mouton_data::BinaryReader::open(&path)?.collect::<Result<_, _>>()?;
/// assert_eq!((d[0].meta.key_id, d[0].strokes.stroke(0).1), (42, &[10.0f32, 20.0][..]));
///
/// std::fs::write(&path, &rec[..rec.len() - 1])?; // cut the last byte
/// let err = mouton_data::BinaryReader::open(&path)?.next().unwrap().unwrap_err();
/// assert!(err.to_string().contains("one.bin at byte 0: truncated record"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BinaryReader {
    file: PathBuf,
    input: Box<dyn BufRead + Send>,
    offset: u64,
    bytes: Vec<u8>,
    done: bool,
}

impl BinaryReader {
    /// Opens `path` (gzip detected by magic bytes).
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(BinaryReader {
            file: path.to_path_buf(),
            input: open(path)?,
            offset: 0,
            bytes: Vec::with_capacity(512),
            done: false,
        })
    }

    fn read(&mut self, n: usize, start: u64) -> Result<&[u8], DataError> {
        let at = self.bytes.len();
        self.bytes.resize(at + n, 0);
        match self.input.read_exact(&mut self.bytes[at..]) {
            Ok(()) => Ok(&self.bytes[at..]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(DataError::new(
                &self.file,
                Location::Offset(start),
                format!(
                    "truncated record (needed {n} more bytes at byte {})",
                    start + at as u64
                ),
            )),
            Err(e) => Err(DataError::new(
                &self.file,
                Location::Offset(start),
                io_message(&e),
            )),
        }
    }

    fn record(&mut self) -> Result<Option<Drawing>, DataError> {
        let start = self.offset;
        self.bytes.clear();
        // End of file exactly between records is the normal end.
        match self.input.fill_buf() {
            Ok([]) => return Ok(None),
            Ok(_) => {}
            Err(e) => {
                return Err(DataError::new(
                    &self.file,
                    Location::Offset(start),
                    io_message(&e),
                ))
            }
        }
        let head = self.read(17, start)?;
        let key_id = u64::from_le_bytes(head[0..8].try_into().expect("8 bytes"));
        let countrycode = String::from_utf8_lossy(&head[8..10])
            .trim_end_matches('\0')
            .to_string();
        let recognized = head[10] != 0;
        let timestamp = u32::from_le_bytes(head[11..15].try_into().expect("4 bytes"));
        let n_strokes = u16::from_le_bytes(head[15..17].try_into().expect("2 bytes"));
        let mut strokes = Strokes::default();
        for _ in 0..n_strokes {
            let n = u16::from_le_bytes(self.read(2, start)?.try_into().expect("2 bytes")) as usize;
            if n == 0 {
                return Err(DataError::new(
                    &self.file,
                    Location::Offset(start),
                    format!("stroke {} has no points", strokes.len()),
                ));
            }
            let xy = self.read(2 * n, start)?;
            let (xs, ys) = xy.split_at(n);
            strokes.x.extend(xs.iter().map(|&v| v as f32));
            strokes.y.extend(ys.iter().map(|&v| v as f32));
            strokes.ends.push(strokes.x.len() as u32);
        }
        self.offset += self.bytes.len() as u64;
        Ok(Some(Drawing {
            meta: Meta {
                word: String::new(),
                countrycode,
                timestamp: Timestamp::Unix(timestamp),
                recognized,
                key_id,
            },
            strokes,
        }))
    }
}

/// Headerless 28x28 bitmaps (Quick Draw's `.bin` bitmap downloads) are often taken for this
/// format, since they share its extension; a plain file whose size is a whole number of such
/// images gets a hint naming the format it may be.
fn bitmap28_hint(path: &Path) -> Option<String> {
    let len = std::fs::metadata(path).ok()?.len();
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut magic)
        .ok()?;
    (len % 784 == 0 && magic != GZIP_MAGIC).then(|| {
        format!(
            " (not Google's binary format? the file's {len} bytes are {} images of 28x28: \
             headerless bitmaps are the `bitmap28` format, which is never detected, \
             e.g. `--format bitmap28`)",
            len / 784
        )
    })
}

impl Iterator for BinaryReader {
    type Item = Result<Drawing, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.record() {
            Ok(Some(d)) => Some(Ok(d)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(mut e) => {
                // A broken record leaves the stream position unknown: stop after reporting it.
                self.done = true;
                if let Some(hint) = bitmap28_hint(&self.file) {
                    e.message.push_str(&hint);
                }
                Some(Err(e))
            }
        }
    }
}
