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
    let px = (opts.size as usize).pow(2);
    Rasterizer::new(*opts).ok_or_else(|| {
        DataError::new(
            path,
            Location::File,
            format!("invalid raster options {opts:?}"),
        )
    })?;
    let mut reader = NdjsonReader::open(path)?;
    let mut out = Vec::new();
    let mut summary = Summary::default();
    let mut text = Vec::new();
    let mut lines: Vec<(usize, usize, u64)> = Vec::with_capacity(BATCH_LINES);
    loop {
        text.clear();
        lines.clear();
        let mut read_error = None;
        while lines.len() < BATCH_LINES {
            match reader.next_line() {
                None => break,
                Some(Ok((bytes, no))) => {
                    let start = text.len();
                    text.extend_from_slice(bytes);
                    lines.push((start, text.len(), no));
                }
                Some(Err(e)) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        if lines.is_empty() {
            if let Some(e) = read_error {
                return Err(e);
            }
            break;
        }
        let base = out.len();
        out.resize(base + lines.len() * px, 0);
        // Per line: Ok(Some(raw?)) kept, Ok(None) filtered out, Err(message) invalid.
        let results: Vec<Result<Option<bool>, String>> = out[base..]
            .par_chunks_mut(px)
            .zip(lines.par_iter())
            .map_init(
                || {
                    (
                        Rasterizer::new(*opts).expect("options checked above"),
                        Strokes::default(),
                        Strokes::default(),
                        Simplifier::default(),
                    )
                },
                |(r, strokes, simple, simplifier), (img, &(a, b, _))| {
                    let (meta, kind) = parse_into(&text[a..b], strokes)?;
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
            .collect();
        // Compact the kept images in file order; stop at the first error unless skipping.
        let mut write = base;
        let mut stop = false;
        for (k, res) in results.into_iter().enumerate() {
            match res {
                Ok(Some(raw)) => {
                    if filter.first.is_some_and(|n| summary.kept >= n) {
                        stop = true;
                        break;
                    }
                    let from = base + k * px;
                    out.copy_within(from..from + px, write);
                    write += px;
                    summary.kept += 1;
                    summary.simplified += raw as usize;
                }
                Ok(None) => summary.filtered += 1,
                Err(msg) => {
                    let e = DataError::new(path, Location::Line(lines[k].2), msg);
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
        out.truncate(write);
        if let Some(e) = read_error {
            return Err(e);
        }
        if stop || filter.first.is_some_and(|n| summary.kept >= n) {
            break;
        }
    }
    Ok((out, summary))
}
