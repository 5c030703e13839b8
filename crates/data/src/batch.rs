//! Whole files to images, in parallel: lines are read in batches and parsed, simplified (raw
//! input) and rendered on all cores, each thread with its own reusable buffers.

use std::path::Path;

use rayon::prelude::*;

use crate::ndjson::{parse_into, NdjsonKind, NdjsonReader};
use crate::{DataError, Location, Meta, RasterOptions, Rasterizer, Simplifier, Strokes};

/// Which drawings to keep, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Keep only drawings the game recognized.
    pub recognized_only: bool,
    /// Keep only these two-letter country codes (any, when empty).
    pub countries: Vec<String>,
    /// Stop after this many kept drawings.
    pub first: Option<usize>,
    /// Then keep a seeded random sample of this many (in file order): `(count, seed)`.
    pub random: Option<(usize, u64)>,
}

impl Filter {
    /// Whether a drawing with this metadata is kept.
    pub fn keeps(&self, meta: &Meta) -> bool {
        (!self.recognized_only || meta.recognized)
            && (self.countries.is_empty() || self.countries.contains(&meta.countrycode))
    }
}

/// What reading a file did besides the images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Drawings kept (one image each).
    pub kept: usize,
    /// Valid drawings the filter left out.
    pub filtered: usize,
    /// Invalid lines skipped (only with `skip_invalid`).
    pub skipped: usize,
    /// The first few skipped lines' errors, for the report.
    pub skipped_examples: Vec<String>,
    /// Raw drawings that were simplified before rendering.
    pub simplified: usize,
}

/// Lines handed to the workers at once: big enough to keep both cores busy, small enough that
/// memory stays flat.
const BATCH_LINES: usize = 4096;

/// Renders every kept drawing of an ndjson file (simplified or raw, plain or gzip) with `opts`:
/// `size * size` bytes per drawing, in file order. Raw drawings are simplified first, as Google
/// did. With `skip_invalid`, bad lines are counted instead of failing the whole file.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("two.ndjson");
/// let line = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[10,200],[128,128]]]}"#;
/// std::fs::write(&path, format!("{line}\nnot json\n{line}\n"))?;
/// let opts = mouton_data::RasterOptions::default();
/// let err = mouton_data::rasterize_file(&path, &opts, &Default::default(), false).unwrap_err();
/// assert!(err.to_string().contains("two.ndjson:2: "), "{err}");
/// let (images, summary) = mouton_data::rasterize_file(&path, &opts, &Default::default(), true)?;
/// assert_eq!((images.len(), summary.kept, summary.skipped), (2 * 784, 2, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rasterize_file(
    path: &Path,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
) -> Result<(Vec<u8>, Summary), DataError> {
    let mut out = Vec::new();
    let summary = rasterize_file_with(path, opts, filter, skip_invalid, |images| {
        out.extend_from_slice(images);
        Ok(())
    })?;
    Ok((out, summary))
}

/// [`rasterize_file`] handing the images to `sink` a batch at a time, in file order, instead of
/// collecting them: `sink` runs while the workers render the next batch, so writing the
/// images out costs no extra wall time, and memory stays flat whatever the file's size.
/// Nothing is handed over after an error, but batches before it may have been.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("dots.ndjson");
/// let line = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[10],[20]]]}"#;
/// std::fs::write(&path, format!("{line}\n{line}\n{line}\n"))?;
/// let mut count = 0;
/// let summary = mouton_data::rasterize_file_with(
///     &path,
///     &Default::default(),
///     &Default::default(),
///     false,
///     |images| {
///         count += images.len() / 784;
///         Ok(())
///     },
/// )?;
/// assert_eq!((count, summary.kept), (3, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rasterize_file_with(
    path: &Path,
    opts: &RasterOptions,
    filter: &Filter,
    skip_invalid: bool,
    mut sink: impl FnMut(&[u8]) -> Result<(), DataError> + Send,
) -> Result<Summary, DataError> {
    let px = (opts.size as usize).pow(2);
    Rasterizer::new(*opts).ok_or_else(|| {
        DataError::new(
            path,
            Location::File,
            format!("invalid raster options {opts:?}"),
        )
    })?;
    let mut reader = NdjsonReader::open(path)?;
    let mut summary = Summary::default();
    // Three stages at once: the workers render batch k while batch k + 1 is read and batch
    // k - 1's kept images go to the sink.
    let mut cur = LineBatch::default();
    let mut next = LineBatch::default();
    let mut images = Vec::new();
    let mut kept = Vec::new();
    cur.read(&mut reader);
    loop {
        if cur.lines.is_empty() {
            if let Some(e) = cur.error.take() {
                return Err(e);
            }
            break;
        }
        images.resize(cur.lines.len() * px, 0);
        let read_on = cur.error.is_none();
        let (results, handed) = rayon::join(
            || render_batch(&cur, &mut images, px, opts, filter),
            || {
                if read_on {
                    next.read(&mut reader)
                }
                if kept.is_empty() {
                    Ok(())
                } else {
                    sink(&kept)
                }
            },
        );
        handed?;
        kept.clear();
        // Keep the kept images in file order; stop at the first error unless skipping.
        let mut stop = false;
        for (k, res) in results.into_iter().enumerate() {
            match res {
                Ok(Some(raw)) => {
                    if filter.first.is_some_and(|n| summary.kept >= n) {
                        stop = true;
                        break;
                    }
                    kept.extend_from_slice(&images[k * px..(k + 1) * px]);
                    summary.kept += 1;
                    summary.simplified += raw as usize;
                }
                Ok(None) => summary.filtered += 1,
                Err(msg) => {
                    let e = DataError::new(path, Location::Line(cur.lines[k].2), msg);
                    if !skip_invalid {
                        return Err(e);
                    }
                    summary.skipped += 1;
                    if summary.skipped_examples.len() < 5 {
                        summary.skipped_examples.push(e.to_string());
                    }
                }
            }
        }
        if let Some(e) = cur.error.take() {
            return Err(e);
        }
        if stop || filter.first.is_some_and(|n| summary.kept >= n) {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    if !kept.is_empty() {
        sink(&kept)?;
    }
    Ok(summary)
}

/// Up to [`BATCH_LINES`] lines of a file: their bytes back to back, each line's (start, end,
/// line number), and the read error that cut the batch short, if any.
#[derive(Default)]
struct LineBatch {
    text: Vec<u8>,
    lines: Vec<(usize, usize, u64)>,
    error: Option<DataError>,
}

impl LineBatch {
    /// Refills the batch from `reader`.
    fn read(&mut self, reader: &mut NdjsonReader) {
        self.text.clear();
        self.lines.clear();
        self.error = None;
        while self.lines.len() < BATCH_LINES {
            match reader.next_line() {
                None => break,
                Some(Ok((bytes, no))) => {
                    let start = self.text.len();
                    self.text.extend_from_slice(bytes);
                    self.lines.push((start, self.text.len(), no));
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
    }
}

/// Items of a batch handed to one worker at a time: each worker's buffers are built once per
/// such run, so runs are kept long enough for that to be noise.
const MIN_RUN: usize = 64;

/// Parses, filters and renders a batch into `out` (`px` bytes per line), in parallel. Per line:
/// `Ok(Some(raw))` kept (raw: simplified first), `Ok(None)` filtered out, `Err` invalid.
fn render_batch(
    batch: &LineBatch,
    out: &mut [u8],
    px: usize,
    opts: &RasterOptions,
    filter: &Filter,
) -> Vec<Result<Option<bool>, String>> {
    out.par_chunks_mut(px)
        .zip(batch.lines.par_iter())
        .with_min_len(MIN_RUN)
        .map_init(
            || {
                (
                    Rasterizer::new(*opts).expect("options checked by the caller"),
                    Strokes::default(),
                    Strokes::default(),
                    Simplifier::default(),
                )
            },
            |(r, strokes, simple, simplifier), (img, &(a, b, _))| {
                let (meta, kind) = parse_into(&batch.text[a..b], strokes)?;
                if !filter.keeps(&meta) {
                    return Ok(None);
                }
                let raw = kind == NdjsonKind::Raw;
                if raw {
                    simplifier.simplify_into(strokes, simple);
                    r.render(simple, img);
                } else {
                    r.render(strokes, img);
                }
                Ok(Some(raw))
            },
        )
        .collect()
}
