//! One Quick, Draw! drawing: its metadata and its strokes, stored flat (no allocation per stroke).

/// When a drawing was made, as each format records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    /// The ndjson text, e.g. `2017-03-28 07:09:01.69625 UTC`.
    Text(String),
    /// Seconds since the Unix epoch (Google's binary format).
    Unix(u32),
}

/// What Quick, Draw! records about a drawing besides its strokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The category, e.g. `sheep` (empty for the binary format, which does not store it).
    pub word: String,
    /// Two-letter country code of the player.
    pub countrycode: String,
    /// When it was drawn.
    pub timestamp: Timestamp,
    /// Whether the game's classifier recognized it.
    pub recognized: bool,
    /// Google's unique id of the drawing.
    pub key_id: u64,
}

/// A drawing's strokes: points in drawing order, with the index one past each stroke's last point.
///
/// Simplified drawings have integer coordinates in 0..=255; raw ones real coordinates in device
/// pixels and a time in milliseconds per point.
///
/// ```
/// use mouton_data::Strokes;
/// let mut s = Strokes::default();
/// s.push_stroke(&[0.0, 10.0], &[0.0, 5.0], None);
/// s.push_stroke(&[3.0], &[4.0], None);
/// assert_eq!(s.len(), 2);
/// assert_eq!(s.stroke(1).0, &[3.0]);
/// assert_eq!(s.bounds(), Some((0.0, 0.0, 10.0, 5.0)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strokes {
    /// x of every point.
    pub x: Vec<f32>,
    /// y of every point.
    pub y: Vec<f32>,
    /// Time of every point in ms (raw drawings only; empty otherwise).
    pub t: Vec<f64>,
    /// `ends[k]` is one past the last point of stroke k.
    pub ends: Vec<u32>,
}

impl Strokes {
    /// Number of strokes.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no stroke.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total number of points.
    pub fn points(&self) -> usize {
        self.x.len()
    }

    /// Stroke `k`'s x, y and (raw drawings) t.
    pub fn stroke(&self, k: usize) -> (&[f32], &[f32], &[f64]) {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        let end = self.ends[k] as usize;
        let t = if self.t.is_empty() {
            &[][..]
        } else {
            &self.t[start..end]
        };
        (&self.x[start..end], &self.y[start..end], t)
    }

    /// Appends a stroke (`t` for raw drawings).
    pub fn push_stroke(&mut self, x: &[f32], y: &[f32], t: Option<&[f64]>) {
        self.x.extend_from_slice(x);
        self.y.extend_from_slice(y);
        if let Some(t) = t {
            self.t.extend_from_slice(t);
        }
        self.ends.push(self.x.len() as u32);
    }

    /// (min x, min y, max x, max y) over all points, `None` without points.
    pub fn bounds(&self) -> Option<(f32, f32, f32, f32)> {
        if self.x.is_empty() {
            return None;
        }
        let fold = |v: &[f32]| {
            v.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &a| {
                    (lo.min(a), hi.max(a))
                })
        };
        let (x0, x1) = fold(&self.x);
        let (y0, y1) = fold(&self.y);
        Some((x0, y0, x1, y1))
    }

    /// Removes every stroke, keeping the buffers for reuse.
    pub fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
        self.t.clear();
        self.ends.clear();
    }
}

/// A drawing: metadata and strokes.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    /// Metadata.
    pub meta: Meta,
    /// Strokes.
    pub strokes: Strokes,
}
