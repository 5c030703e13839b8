//! What a file holds: counts, recognition, countries, stroke and point statistics.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::{
    read_npy_bitmaps, read_raw_bitmaps, BinaryReader, DataError, Drawing, Format, NdjsonKind,
    NdjsonReader,
};

/// A summary of a Quick, Draw! file, printable as a short report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileInfo {
    /// Detected or given format.
    pub format: Option<Format>,
    /// Drawings (or images) read.
    pub count: usize,
    /// Drawings the game recognized.
    pub recognized: usize,
    /// Raw (unsimplified) drawings among them.
    pub raw: usize,
    /// Drawings per country code.
    pub countries: BTreeMap<String, usize>,
    /// Drawings per word.
    pub words: BTreeMap<String, usize>,
    /// (min, total, max) strokes per drawing.
    pub strokes: (usize, usize, usize),
    /// (min, total, max) points per drawing.
    pub points: (usize, usize, usize),
    /// Bitmaps only: image side and mean pixel value.
    pub bitmap: Option<(usize, f64)>,
}

impl FileInfo {
    fn add(&mut self, d: &Drawing, raw: bool) {
        self.count += 1;
        self.recognized += d.meta.recognized as usize;
        self.raw += raw as usize;
        *self
            .countries
            .entry(d.meta.countrycode.clone())
            .or_default() += 1;
        if !d.meta.word.is_empty() {
            *self.words.entry(d.meta.word.clone()).or_default() += 1;
        }
        let (s, p) = (d.strokes.len(), d.strokes.points());
        let first = self.count == 1;
        self.strokes = (
            if first { s } else { self.strokes.0.min(s) },
            self.strokes.1 + s,
            self.strokes.2.max(s),
        );
        self.points = (
            if first { p } else { self.points.0.min(p) },
            self.points.1 + p,
            self.points.2.max(p),
        );
    }
}

/// Reads a whole file and summarizes it (streaming: memory does not grow with the file, except
/// for bitmaps, which are loaded).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.ndjson");
/// let line = |c: &str, r: bool| format!(r#"{{"word":"sheep","countrycode":"{c}","timestamp":"","recognized":{r},"key_id":"1","drawing":[[[0,9],[0,9]],[[5],[5]]]}}"#);
/// std::fs::write(&p, format!("{}\n{}\n", line("FR", true), line("SE", false)))?;
/// let info = mouton_data::file_info(&p, mouton_data::Format::Ndjson)?;
/// assert_eq!((info.count, info.recognized, info.strokes, info.points), (2, 1, (2, 4, 2), (3, 6, 3)));
/// assert!(info.to_string().contains("recognized: 1 (50.0 %)"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn file_info(path: &Path, format: Format) -> Result<FileInfo, DataError> {
    let mut info = FileInfo {
        format: Some(format),
        ..FileInfo::default()
    };
    match format {
        Format::Ndjson => {
            for item in NdjsonReader::open(path)? {
                let (d, kind) = item?;
                info.add(&d, kind == NdjsonKind::Raw);
            }
        }
        Format::Binary => {
            for d in BinaryReader::open(path)? {
                info.add(&d?, false);
            }
        }
        Format::Npy | Format::Bitmap28 => {
            let b = if format == Format::Npy {
                read_npy_bitmaps(path)?
            } else {
                read_raw_bitmaps(path, 28)?
            };
            info.count = b.len();
            let mean = b.data.iter().map(|&v| v as f64).sum::<f64>() / b.data.len().max(1) as f64;
            info.bitmap = Some((b.side, mean));
        }
    }
    Ok(info)
}

impl fmt::Display for FileInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |a: usize| 100.0 * a as f64 / self.count.max(1) as f64;
        writeln!(f, "format: {:?}", self.format.unwrap_or(Format::Ndjson))?;
        if let Some((side, mean)) = self.bitmap {
            writeln!(f, "images: {} of {side}x{side}", self.count)?;
            return writeln!(f, "mean pixel: {mean:.1} / 255");
        }
        writeln!(f, "drawings: {}", self.count)?;
        if self.count == 0 {
            return Ok(());
        }
        writeln!(
            f,
            "recognized: {} ({:.1} %)",
            self.recognized,
            pct(self.recognized)
        )?;
        if self.raw > 0 {
            writeln!(f, "raw (unsimplified): {}", self.raw)?;
        }
        if !self.words.is_empty() {
            let words: Vec<String> = self
                .words
                .iter()
                .map(|(w, n)| format!("{w} ({n})"))
                .collect();
            writeln!(f, "words: {}", words.join(", "))?;
        }
        let mut countries: Vec<(&String, &usize)> = self.countries.iter().collect();
        countries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = countries
            .iter()
            .take(10)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        writeln!(
            f,
            "countries: {} ({}{})",
            self.countries.len(),
            top.join(", "),
            if countries.len() > 10 { ", ..." } else { "" }
        )?;
        let n = self.count as f64;
        writeln!(
            f,
            "strokes per drawing: min {}, mean {:.2}, max {}",
            self.strokes.0,
            self.strokes.1 as f64 / n,
            self.strokes.2
        )?;
        writeln!(
            f,
            "points per drawing: min {}, mean {:.2}, max {}",
            self.points.0,
            self.points.1 as f64 / n,
            self.points.2
        )
    }
}
