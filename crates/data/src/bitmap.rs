//! Bitmap files: numpy `.npy` (Google's numpy_bitmap: uint8, N x 784 or N x 28 x 28) and
//! headerless concatenations of uint8 images, plus an atomic `.npy` writer.

use std::io::{Read, Write};

use npyz::WriterBuilder;
use std::path::Path;

use crate::source::{io_message, open};
use crate::{DataError, Location};

/// A stack of square greyscale images, row-major, 0 = background, 255 = ink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmaps {
    /// Side of every image, in pixels.
    pub side: usize,
    /// `len() * side * side` bytes.
    pub data: Vec<u8>,
}

impl Bitmaps {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.data.len() / (self.side * self.side).max(1)
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Image `k`.
    pub fn image(&self, k: usize) -> &[u8] {
        let px = self.side * self.side;
        &self.data[k * px..(k + 1) * px]
    }
}

/// Reads a numpy `.npy` file of uint8 images: shape (N, side * side) with a square number of
/// columns, or (N, side, side). Anything else is refused with the reason.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("x.npy");
/// mouton_data::write_npy_u8(&path, &[7u8; 2 * 784], &[2, 784])?;
/// let b = mouton_data::read_npy_bitmaps(&path)?;
/// assert_eq!((b.len(), b.side, b.image(1)[0]), (2, 28, 7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_npy_bitmaps(path: &Path) -> Result<Bitmaps, DataError> {
    let bad = |m: String| DataError::new(path, Location::File, m);
    let mut reader = open(path)?;
    let header =
        read_npy_header(&mut reader).map_err(|m| bad(format!("not a valid .npy file: {m}")))?;
    // The shape is checked before npyz sees it: npyz multiplies it out unchecked.
    let shape = npy_header_shape(&header)
        .ok_or_else(|| bad("not a valid .npy file: the header has no readable 'shape'".into()))?;
    if shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .is_none()
    {
        return Err(bad(format!(
            "shape {shape:?} holds more elements than 64 bits count"
        )));
    }
    let npy = npyz::NpyFile::new(header.as_slice())
        .map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
    let dtype = npy.dtype();
    if dtype != npyz::DType::new_scalar("|u1".parse().expect("valid type string")) {
        return Err(bad(format!("dtype {} is not uint8 ('|u1')", dtype.descr())));
    }
    if npy.order() != npyz::Order::C {
        return Err(bad("Fortran-ordered arrays are not supported".into()));
    }
    let shape = npy.shape().to_vec();
    let side = match shape.as_slice() {
        [_, cols] => {
            let s = (*cols as f64).sqrt().round() as u64;
            if s.checked_mul(s) != Some(*cols) || s == 0 {
                return Err(bad(format!(
                    "shape {shape:?}: {cols} columns is not a square image"
                )));
            }
            s
        }
        [_, h, w] if h == w && *h > 0 => *h,
        _ => {
            return Err(bad(format!(
                "shape {shape:?} is not (N, side*side) or (N, side, side)"
            )))
        }
    } as usize;
    // The product fits in u64 (checked above); uint8 C-order data is the bytes that follow.
    let expected = npy.len();
    let mut data = Vec::new();
    let got = (&mut reader)
        .take(expected)
        .read_to_end(&mut data)
        .map_err(|e| {
            DataError::new(
                path,
                Location::Offset(header.len() as u64 + data.len() as u64),
                io_message(&e),
            )
        })?;
    if got as u64 != expected {
        return Err(DataError::new(
            path,
            Location::Offset(header.len() as u64 + got as u64),
            format!("data ends after {got} of {expected} bytes"),
        ));
    }
    Ok(Bitmaps { side, data })
}

/// The first bytes of a .npy file.
pub(crate) const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The bytes of a .npy preamble: magic, version, header length and header text.
fn read_npy_header(r: &mut impl Read) -> Result<Vec<u8>, String> {
    let cut = |e: std::io::Error| format!("the header is cut short ({e})");
    let mut head = vec![0u8; 8];
    r.read_exact(&mut head).map_err(cut)?;
    if &head[..6] != NPY_MAGIC {
        return Err("no \\x93NUMPY magic".into());
    }
    let len = match head[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(cut)?;
            head.extend_from_slice(&b);
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(cut)?;
            head.extend_from_slice(&b);
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unknown format version {v}")),
    };
    // Real headers are a few hundred bytes; a huge length is a corrupt file.
    if len > 1 << 20 {
        return Err(format!("a header of {len} bytes"));
    }
    let start = head.len();
    head.resize(start + len, 0);
    r.read_exact(&mut head[start..]).map_err(cut)?;
    Ok(head)
}

/// The `'shape': (...)` of a .npy header (as `read_npy_header` returns it) when it reads as
/// integers.
fn npy_header_shape(header: &[u8]) -> Option<Vec<u64>> {
    let start = if *header.get(6)? == 1 { 10 } else { 12 };
    let text = std::str::from_utf8(header.get(start..)?).ok()?;
    let at = text.find("'shape'").or_else(|| text.find("\"shape\""))?;
    let rest = &text[at..];
    let open = rest.find('(')?;
    let close = open + rest[open..].find(')')?;
    rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<u64>().ok())
        .collect()
}

/// Reads a headerless concatenation of `side x side` uint8 images (like
/// `bitmap28_uint8/sheep.bin`, 784 bytes per drawing). A trailing partial image is an error
/// naming its byte offset.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("x.bin");
/// std::fs::write(&path, vec![1u8; 784 * 3 + 10])?;
/// let err = mouton_data::read_raw_bitmaps(&path, 28).unwrap_err();
/// assert!(err.to_string().ends_with("x.bin at byte 2352: truncated image: 10 of 784 bytes"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_raw_bitmaps(path: &Path, side: usize) -> Result<Bitmaps, DataError> {
    let mut data = Vec::new();
    open(path)?
        .read_to_end(&mut data)
        .map_err(|e| DataError::new(path, Location::Offset(data.len() as u64), io_message(&e)))?;
    let px = side * side;
    if px == 0 {
        return Err(DataError::new(
            path,
            Location::File,
            "image side must be > 0",
        ));
    }
    let rest = data.len() % px;
    if rest != 0 {
        return Err(DataError::new(
            path,
            Location::Offset((data.len() - rest) as u64),
            format!("truncated image: {rest} of {px} bytes"),
        ));
    }
    Ok(Bitmaps { side, data })
}

/// Writes `data` as a uint8 `.npy` array of `shape`, atomically: to a temporary file in the same
/// folder, renamed over `path` only once complete.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("two.npy");
/// mouton_data::write_npy_u8(&path, &[0, 255, 255, 0, 9, 9, 9, 9], &[2, 4])?;
/// let b = mouton_data::read_npy_bitmaps(&path)?; // (2, 4): two 2x2 images
/// assert_eq!((b.len(), b.side, b.image(0)), (2, 2, &[0, 255, 255, 0][..]));
/// // A shape that does not hold the bytes is refused, and nothing is written.
/// let bad = dir.path().join("bad.npy");
/// assert!(mouton_data::write_npy_u8(&bad, &[1, 2, 3], &[2, 2]).is_err());
/// assert!(!bad.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_npy_u8(path: &Path, data: &[u8], shape: &[u64]) -> Result<(), DataError> {
    let fail = |m: String| DataError::new(path, Location::File, m);
    if shape.iter().product::<u64>() != data.len() as u64 {
        return Err(fail(format!(
            "shape {shape:?} does not hold {} bytes",
            data.len()
        )));
    }
    // npyz writes the header; the body of a C-order uint8 array is the bytes themselves, and
    // handing them over at once avoids npyz's per-element writes (a tenth of a whole-file
    // rasterization's time, on one core).
    let header = npy_u8_header(shape).map_err(|e| fail(format!("cannot write the header: {e}")))?;
    write_atomically(path, |f| {
        f.write_all(&header)?;
        f.write_all(data)
    })
}

/// Runs `write` on a temporary file next to `path`, then renames it over `path`; on any error
/// the temporary file is removed and `path` is untouched.
///
/// ```
/// use std::io::Write;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("notes.txt");
/// mouton_data::write_atomically(&path, |f| f.write_all(b"first"))?;
/// // A writer that fails half-way leaves the old file as it was, and no temporary file.
/// let err = mouton_data::write_atomically(&path, |f| {
///     f.write_all(b"half")?;
///     Err(std::io::Error::other("disk full"))
/// });
/// assert!(err.unwrap_err().to_string().contains("disk full"));
/// assert_eq!(std::fs::read(&path)?, b"first");
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    let fail = |m: String| DataError::new(path, Location::File, m);
    let mut tmp = temp_beside(path)?;
    {
        let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buf).map_err(|e| fail(format!("write failed: {e}")))?;
        buf.flush()
            .map_err(|e| fail(format!("write failed: {e}")))?;
    }
    persist(tmp, path)
}

/// A temporary file in `path`'s folder (so that renaming it over `path` is atomic).
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, DataError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        DataError::new(
            path,
            Location::File,
            format!("cannot create a temporary file in {}: {e}", dir.display()),
        )
    })
}

/// Syncs a complete temporary file and renames it over `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), DataError> {
    let fail = |m: String| DataError::new(path, Location::File, m);
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail(format!("write failed: {e}")))?;
    // Temporary files are created private (0600); the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| fail(format!("cannot set permissions: {e}")))?;
    }
    tmp.persist(path)
        .map_err(|e| fail(format!("cannot rename into place: {}", e.error)))?;
    Ok(())
}

/// npyz's header for a C-order uint8 array of `shape`.
fn npy_u8_header(shape: &[u64]) -> std::io::Result<Vec<u8>> {
    // The writer is dropped unfinished on purpose: its element-count check would fail, and the
    // header is already out.
    let mut header = Vec::new();
    drop(
        npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut header)
            .begin_nd()?,
    );
    Ok(header)
}

/// A uint8 `.npy` file of shape (rows, `row_len`) written row batch by row batch, for outputs
/// whose row count is known only at the end (filtered or invalid input lines): the header is
/// rewritten in place once the count is known, and the file appears at its path only when
/// [`finish`](Self::finish) succeeds (dropped unfinished, nothing is left behind).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("rows.npy");
/// let mut w = mouton_data::NpyRowWriter::create(&path, 4)?;
/// w.write_rows(&[1, 2, 3, 4])?;
/// w.write_rows(&[5, 6, 7, 8, 9, 10, 11, 12])?;
/// assert!(!path.exists());
/// assert_eq!(w.finish()?, 3);
/// let b = mouton_data::read_npy_bitmaps(&path)?; // 4 = 2 x 2 pixels per row
/// assert_eq!((b.len(), b.side, b.image(2)), (3, 2, &[9u8, 10, 11, 12][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NpyRowWriter {
    path: std::path::PathBuf,
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    row_len: u64,
    rows: u64,
    header_len: usize,
}

impl NpyRowWriter {
    /// Starts a file of rows of `row_len` (>= 1) bytes at `path`.
    pub fn create(path: &Path, row_len: usize) -> Result<Self, DataError> {
        let fail = |m: String| DataError::new(path, Location::File, m);
        if row_len == 0 {
            return Err(fail("rows must hold at least one byte".into()));
        }
        // A placeholder with the largest count a file can hold (npyz multiplies the shape):
        // no real count's header is longer, and `finish` checks that it is exactly as long.
        let header = npy_u8_header(&[u64::MAX / row_len as u64, row_len as u64])
            .map_err(|e| fail(format!("cannot write the header: {e}")))?;
        let mut out = std::io::BufWriter::new(temp_beside(path)?);
        out.write_all(&header)
            .map_err(|e| fail(format!("write failed: {e}")))?;
        Ok(NpyRowWriter {
            path: path.to_path_buf(),
            out,
            row_len: row_len as u64,
            rows: 0,
            header_len: header.len(),
        })
    }

    /// Appends whole rows (`data.len()` a multiple of the row length).
    pub fn write_rows(&mut self, data: &[u8]) -> Result<(), DataError> {
        let fail = |m: String| DataError::new(&self.path, Location::File, m);
        if !(data.len() as u64).is_multiple_of(self.row_len) {
            return Err(fail(format!(
                "{} bytes are not whole rows of {}",
                data.len(),
                self.row_len
            )));
        }
        self.out
            .write_all(data)
            .map_err(|e| fail(format!("write failed: {e}")))?;
        self.rows += data.len() as u64 / self.row_len;
        Ok(())
    }

    /// Writes the final header, syncs, and renames the file into place; returns the row count.
    pub fn finish(self) -> Result<u64, DataError> {
        use std::io::{Seek, SeekFrom};
        let path = self.path;
        let fail = |m: String| DataError::new(&path, Location::File, m);
        let header = npy_u8_header(&[self.rows, self.row_len])
            .map_err(|e| fail(format!("cannot write the header: {e}")))?;
        if header.len() != self.header_len {
            return Err(fail(format!(
                "the .npy header for {} rows is {} bytes, not the {} reserved",
                self.rows,
                header.len(),
                self.header_len
            )));
        }
        let mut tmp = self
            .out
            .into_inner()
            .map_err(|e| fail(format!("write failed: {}", e.error())))?;
        let f = tmp.as_file_mut();
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&header))
            .map_err(|e| fail(format!("write failed: {e}")))?;
        persist(tmp, &path)?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_writer_headers_keep_their_length_for_every_count() {
        // The placeholder header must be as long as the final one for any count and for every
        // row length a rasterization can produce (1 to 4096 x 4096 pixels).
        for row_len in [1u64, 784, 4096 * 4096] {
            let placeholder = npy_u8_header(&[u64::MAX / row_len, row_len]).unwrap();
            for rows in [0, 1, 126_121, u64::MAX / row_len] {
                let h = npy_u8_header(&[rows, row_len]).unwrap();
                assert_eq!(h.len(), placeholder.len(), "{rows} x {row_len}");
                assert_eq!(h.len() % 64, 0);
            }
        }
    }

    #[test]
    fn unfinished_row_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let mut w = NpyRowWriter::create(&path, 3).unwrap();
        w.write_rows(&[1, 2, 3]).unwrap();
        let err = w.write_rows(&[1, 2]).unwrap_err();
        assert!(
            err.to_string().contains("2 bytes are not whole rows of 3"),
            "{err}"
        );
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
