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
    let npy =
        npyz::NpyFile::new(open(path)?).map_err(|e| bad(format!("not a valid .npy file: {e}")))?;
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
            if s * s != *cols || s == 0 {
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
    let expected = shape.iter().product::<u64>() as usize;
    let data: Vec<u8> = npy
        .into_vec()
        .map_err(|e| DataError::new(path, Location::Offset(0), io_message(&e)))?;
    if data.len() != expected {
        return Err(DataError::new(
            path,
            Location::Offset(data.len() as u64),
            format!("data ends after {} of {expected} bytes", data.len()),
        ));
    }
    Ok(Bitmaps { side, data })
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
pub fn write_npy_u8(path: &Path, data: &[u8], shape: &[u64]) -> Result<(), DataError> {
    let fail = |m: String| DataError::new(path, Location::File, m);
    if shape.iter().product::<u64>() != data.len() as u64 {
        return Err(fail(format!(
            "shape {shape:?} does not hold {} bytes",
            data.len()
        )));
    }
    write_atomically(path, |f| {
        let mut w = npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(shape)
            .writer(f)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    })
}

/// Runs `write` on a temporary file next to `path`, then renames it over `path`; on any error
/// the temporary file is removed and `path` is untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    let fail = |m: String| DataError::new(path, Location::File, m);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        fail(format!(
            "cannot create a temporary file in {}: {e}",
            dir.display()
        ))
    })?;
    {
        let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buf).map_err(|e| fail(format!("write failed: {e}")))?;
        buf.flush()
            .map_err(|e| fail(format!("write failed: {e}")))?;
    }
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
