//! A cache of rasterized files, so the second run skips parsing and rendering.
//!
//! The key is the BLAKE3 hash of the source file's bytes together with everything that shapes
//! the images (format, size, pen, padding, filter, skip-invalid, renderer version); entries are
//! uint8 `.npy` files written atomically, so an interrupted run never leaves a torn entry.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{
    load_images, read_npy_bitmaps, write_npy_u8, Bitmaps, DataError, Filter, Format, Location,
    RasterOptions, Summary,
};

/// Bump when the renderer's output changes, so old entries are not reused.
const RENDER_VERSION: u32 = 1;

/// Whether a load came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Read from this entry; nothing was parsed.
    Hit,
    /// Rendered, then stored.
    Miss,
}

/// Like [`load_images`], through a cache in `cache_dir`. Returns the images, what the load did
/// (a hit reports only the count), the status, and the entry's path.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use mouton_data::{load_images_cached, CacheStatus, Format, RasterOptions};
/// let src = dir.path().join("a.ndjson");
/// std::fs::write(&src, r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[0,9],[0,9]]]}"#)?;
/// let cache = dir.path().join("cache");
/// let opts = RasterOptions::default();
/// let (a, _, s1, _) = load_images_cached(&src, Format::Ndjson, &opts, &Default::default(), false, &cache)?;
/// let (b, _, s2, _) = load_images_cached(&src, Format::Ndjson, &opts, &Default::default(), false, &cache)?;
/// assert_eq!((s1, s2), (CacheStatus::Miss, CacheStatus::Hit));
/// assert_eq!(a, b);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_images_cached(
    path: &Path,
    format: Format,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
    cache_dir: &Path,
) -> Result<(Bitmaps, Summary, CacheStatus, PathBuf), DataError> {
    let key = cache_key(path, format, opts, filter, skip_invalid)?;
    let entry = cache_dir.join(format!("{key}.npy"));
    if entry.is_file() {
        // A corrupt entry is not the user's input: fall through and rebuild it.
        if let Ok(b) = read_npy_bitmaps(&entry) {
            if b.side == opts.size as usize {
                let summary = Summary {
                    kept: b.len(),
                    ..Summary::default()
                };
                return Ok((b, summary, CacheStatus::Hit, entry));
            }
        }
    }
    let (b, summary) = load_images(path, format, opts, filter, skip_invalid)?;
    std::fs::create_dir_all(cache_dir).map_err(|e| {
        DataError::new(
            cache_dir,
            Location::File,
            format!("cannot create the cache folder: {e}"),
        )
    })?;
    let px = (b.side * b.side) as u64;
    write_npy_u8(&entry, &b.data, &[b.len() as u64, px])?;
    Ok((b, summary, CacheStatus::Miss, entry))
}

fn cache_key(
    path: &Path,
    format: Format,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
) -> Result<String, DataError> {
    let mut h = blake3::Hasher::new();
    let mut f = std::fs::File::open(path)
        .map_err(|e| DataError::new(path, Location::File, format!("cannot open: {e}")))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| DataError::new(path, Location::File, format!("read error: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let settings = format!(
        "v{RENDER_VERSION} {format:?} {} {} {} {:?} {skip_invalid}",
        opts.size, opts.line_diameter, opts.padding, filter
    );
    h.update(settings.as_bytes());
    Ok(h.finalize().to_hex()[..32].to_string())
}
