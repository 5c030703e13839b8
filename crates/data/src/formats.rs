//! One entry point for every input format: detection and loading as images.

use std::io::BufRead;

use rayon::prelude::*;
use std::path::Path;

use crate::{
    rasterize_file, rasterize_file_with, read_npy_bitmaps, read_raw_bitmaps, write_npy_u8,
    BinaryReader, Bitmaps, DataError, Filter, Location, NpyRowWriter, RasterOptions, Rasterizer,
    Summary,
};

/// A Quick, Draw! file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Simplified or raw ndjson (one JSON drawing per line).
    Ndjson,
    /// Google's binary stroke format (`full/binary/*.bin`).
    Binary,
    /// numpy `.npy` bitmaps (`full/numpy_bitmap/*.npy`).
    Npy,
    /// Headerless concatenated 28 x 28 uint8 images. Never detected: its `.bin` extension
    /// collides with Google's binary format, so it must be asked for.
    Bitmap28,
}

/// Guesses the format from the first bytes (after gzip decompression): `{` starts ndjson
/// (after blanks, or a UTF-8 byte order mark), `\x93NUMPY` a `.npy`; anything else is taken
/// for Google's binary format. A pipe or device is refused: the bytes looked at would be gone
/// when the file is opened again to be read.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a");
/// std::fs::write(&p, "\n{\"word\": \"sheep\"}\n")?;
/// assert_eq!(mouton_data::detect_format(&p)?, mouton_data::Format::Ndjson);
/// # #[cfg(unix)] {
/// let err = mouton_data::detect_format(std::path::Path::new("/dev/null")).unwrap_err();
/// assert!(err.to_string().contains("name its format"), "{err}");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn detect_format(path: &Path) -> Result<Format, DataError> {
    // A missing file or a folder goes on to `open`, whose error says so.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if special {
        return Err(DataError::new(
            path,
            Location::File,
            "not a regular file (a pipe or device is read once, and detecting the format would \
             use up its first bytes): name its format (`--format` on the command line)",
        ));
    }
    let mut input = crate::open(path)?;
    let head = input
        .fill_buf()
        .map_err(|e| DataError::new(path, Location::File, crate::source::io_message(&e)))?;
    if head.starts_with(crate::bitmap::NPY_MAGIC) {
        return Ok(Format::Npy);
    }
    // A UTF-8 byte order mark, as some Windows editors save text, may precede the JSON.
    let head = head.strip_prefix(crate::ndjson::UTF8_BOM).unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(Format::Ndjson),
        None => Err(DataError::new(path, Location::File, "file is empty")),
        Some(_) => Ok(Format::Binary),
    }
}

/// Loads a file of any format as images of `opts.size`: drawings are rasterized (raw ones
/// simplified first), bitmaps read as they are (they must already be `opts.size` square).
/// `filter.random` then keeps a seeded random sample, in file order.
///
/// ```
/// use mouton_data::{load_images, Filter, Format, RasterOptions};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("three.ndjson");
/// let line = |cc: &str| format!(
///     r#"{{"word":"sheep","countrycode":"{cc}","timestamp":"","recognized":true,"key_id":"1","drawing":[[[10,200],[128,128]]]}}"#
/// );
/// std::fs::write(&path, [line("FR"), line("US"), line("FR")].join("\n"))?;
/// let opts = RasterOptions { size: 16, ..Default::default() };
/// let french = Filter { countries: vec!["FR".into()], ..Default::default() };
/// let (images, summary) = load_images(&path, Format::Ndjson, &opts, &french, false)?;
/// assert_eq!((images.len(), images.side), (2, 16));
/// assert_eq!((summary.kept, summary.filtered), (2, 1));
/// assert!(images.image(0).iter().any(|&v| v > 0)); // the stroke is drawn
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_images(
    path: &Path,
    format: Format,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
) -> Result<(Bitmaps, Summary), DataError> {
    let (mut b, mut summary) = load_all(path, format, opts, filter, skip_invalid)?;
    if let Some((n, seed)) = filter.random {
        if n < b.len() {
            use rand::seq::index::sample;
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut keep = sample(&mut rng, b.len(), n).into_vec();
            keep.sort_unstable();
            let px = b.side * b.side;
            let mut data = Vec::with_capacity(n * px);
            for i in keep {
                data.extend_from_slice(b.image(i));
            }
            summary.filtered += b.len() - n;
            summary.kept = n;
            b.data = data;
        }
    }
    Ok((b, summary))
}

/// [`load_images`] written to `out` as a Google-compatible uint8 `.npy` of shape
/// (N, size * size), atomically (nothing appears at `out` unless everything succeeded).
/// ndjson input without a random sample is streamed: images are written while later ones are
/// rendered, so memory stays flat. Returns the number of images and the summary.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let src = dir.path().join("line.ndjson");
/// let line = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[10,200],[128,128]]]}"#;
/// std::fs::write(&src, format!("{line}\n{line}\n"))?;
/// let out = dir.path().join("out.npy");
/// let opts = mouton_data::RasterOptions { size: 32, ..Default::default() };
/// let fmt = mouton_data::Format::Ndjson;
/// let (n, _) = mouton_data::rasterize_to_npy(&src, fmt, &opts, &Default::default(), false, &out)?;
/// assert_eq!(n, 2);
/// assert_eq!(mouton_data::read_npy_bitmaps(&out)?.side, 32);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rasterize_to_npy(
    path: &Path,
    format: Format,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
    out: &Path,
) -> Result<(usize, Summary), DataError> {
    let px = (opts.size as usize).pow(2);
    if format == Format::Ndjson && filter.random.is_none() {
        // (px is 0 only for invalid options, which rasterize_file_with reports by name.)
        let mut w = NpyRowWriter::create(out, px.max(1))?;
        let summary = rasterize_file_with(path, opts, filter, skip_invalid, |images| {
            w.write_rows(images)
        })?;
        let n = w.finish()?;
        return Ok((n as usize, summary));
    }
    let (images, summary) = load_images(path, format, opts, filter, skip_invalid)?;
    let px = (images.side * images.side) as u64;
    write_npy_u8(out, &images.data, &[images.len() as u64, px])?;
    Ok((images.len(), summary))
}

/// Binary records rendered at once on all cores.
const BINARY_BATCH: usize = 4096;

fn load_all(
    path: &Path,
    format: Format,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
) -> Result<(Bitmaps, Summary), DataError> {
    let side = opts.size as usize;
    let bitmaps = |b: Bitmaps| -> Result<(Bitmaps, Summary), DataError> {
        if b.side != side {
            return Err(DataError::new(
                path,
                Location::File,
                format!(
                    "holds {0}x{0} bitmaps; they cannot be rendered at {side}x{side}",
                    b.side
                ),
            ));
        }
        let mut b = b;
        if let Some(n) = filter.first {
            b.data.truncate(n * side * side);
        }
        let summary = Summary {
            kept: b.len(),
            ..Summary::default()
        };
        Ok((b, summary))
    };
    match format {
        Format::Ndjson => {
            let (data, summary) = rasterize_file(path, opts, filter, skip_invalid)?;
            Ok((Bitmaps { side, data }, summary))
        }
        Format::Npy => bitmaps(read_npy_bitmaps(path)?),
        Format::Bitmap28 => bitmaps(read_raw_bitmaps(path, 28)?),
        Format::Binary => {
            if !opts.is_valid() {
                return Err(DataError::new(
                    path,
                    Location::File,
                    format!("invalid raster options {opts:?}"),
                ));
            }
            let px = side * side;
            let mut data = Vec::new();
            let mut summary = Summary::default();
            let mut batch = Vec::with_capacity(BINARY_BATCH);
            let mut records = BinaryReader::open(path)?;
            let mut done = false;
            while !done {
                // Records are read one by one (cheap), then rendered on all cores.
                batch.clear();
                while batch.len() < BINARY_BATCH {
                    let d = match records.next() {
                        None => {
                            done = true;
                            break;
                        }
                        Some(Ok(d)) => d,
                        // A broken record ends the stream: nothing after it can be located.
                        Some(Err(e)) if skip_invalid => {
                            summary.skipped += 1;
                            summary.skipped_examples.push(e.to_string());
                            done = true;
                            break;
                        }
                        Some(Err(e)) => return Err(e),
                    };
                    if !filter.keeps(&d.meta) {
                        summary.filtered += 1;
                        continue;
                    }
                    batch.push(d.strokes);
                    summary.kept += 1;
                    if filter.first.is_some_and(|n| summary.kept >= n) {
                        done = true;
                        break;
                    }
                }
                let at = data.len();
                data.resize(at + batch.len() * px, 0);
                data[at..]
                    .par_chunks_mut(px)
                    .zip(batch.par_iter())
                    .with_min_len(64)
                    .for_each_init(
                        || Rasterizer::new(*opts).expect("options checked above"),
                        |r, (img, strokes)| r.render(strokes, img),
                    );
            }
            Ok((Bitmaps { side, data }, summary))
        }
    }
}
