//! Google's numpy_bitmap rendering, reproduced by modelling what cairo does.
//!
//! The recipe (quickdraw-dataset's `vector_to_raster`): drawings live in a 256 x 256 space; each
//! is centred by shifting it (256 - max) / 2 per axis; the space is padded by `padding` +
//! `line_diameter` / 2 on every side and scaled to `size` x `size`; every stroke is stroked on its
//! own (round caps and joins, width `line_diameter`, antialiased, white over black) and one
//! channel is kept.
//!
//! What cairo does with that, and so what this renderer computes:
//! - a stroke's outline is its segments widened by +-r (r = pen radius in pixels), with round caps
//!   and joins approximated by cairo's *pen*: a regular polygon of radius r whose vertex count is
//!   the smallest even number keeping it within 0.1 px (cairo's default tolerance) of the circle,
//!   first vertex at angle 0. At 28 px that is a 12-gon, visibly not a circle. The stroke is then
//!   the union of one rectangle per segment and one pen polygon per point;
//! - coverage is sampled on 15 sub-rows per pixel row (cairo's scan converter, GRID_Y = 15) with
//!   exact horizontal extents; each sub-row's intersection with the union is computed exactly,
//!   interval by interval;
//! - coverage becomes alpha = round(255 c), and each stroke is composited OVER the image with
//!   8-bit arithmetic (v = a + v (255 - a) / 255, rounded as pixman does).
//!
//! It needs no allocation per point or per drawing once warm.

use crate::Strokes;

/// Rendering settings; the defaults are Google's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RasterOptions {
    /// Output side in pixels (Google: 28).
    pub size: u32,
    /// Pen diameter in the 256-space (Google: 16).
    pub line_diameter: f32,
    /// Margin in the 256-space on each side, on top of half the pen (Google: 16).
    pub padding: f32,
}

impl Default for RasterOptions {
    fn default() -> Self {
        RasterOptions {
            size: 28,
            line_diameter: 16.0,
            padding: 16.0,
        }
    }
}

impl RasterOptions {
    /// Google's placement of a drawing whose maximum point is (`max_x`, `max_y`): pixel =
    /// `scale * (coordinate + offset)`, with the space padded by `padding + line_diameter / 2`
    /// and the drawing centred by `(256 - max) / 2`. Returns (scale, offset x, offset y).
    ///
    /// ```
    /// let (scale, ox, oy) = mouton_data::RasterOptions::default().placement(255.0, 127.0);
    /// assert_eq!((scale, ox, oy), (28.0 / 304.0, 24.5, 88.5));
    /// ```
    pub fn placement(&self, max_x: f32, max_y: f32) -> (f64, f64, f64) {
        let pad = self.padding as f64 + self.line_diameter as f64 / 2.0;
        let scale = self.size as f64 / (256.0 + 2.0 * pad);
        (
            scale,
            pad + (256.0 - max_x as f64) / 2.0,
            pad + (256.0 - max_y as f64) / 2.0,
        )
    }

    /// Whether these options can be rendered: size 1..=[`MAX_SIZE`], a finite positive pen and
    /// a finite non-negative padding.
    ///
    /// ```
    /// use mouton_data::RasterOptions;
    /// assert!(RasterOptions::default().is_valid());
    /// assert!(!RasterOptions { size: 0, ..Default::default() }.is_valid());
    /// ```
    pub fn is_valid(&self) -> bool {
        (1..=MAX_SIZE).contains(&self.size)
            && self.line_diameter.is_finite()
            && self.line_diameter > 0.0
            && self.padding.is_finite()
            && self.padding >= 0.0
    }
}

/// Largest supported output side.
pub const MAX_SIZE: u32 = 4096;

/// Sub-rows sampled per pixel row, as cairo's scan converter does.
const SUB: usize = 15;
/// cairo's default tolerance, in pixels.
const TOLERANCE: f64 = 0.1;

/// A reusable renderer: one per thread, so its buffers are allocated once.
///
/// ```
/// use mouton_data::{RasterOptions, Rasterizer, Strokes};
/// let mut s = Strokes::default();
/// s.push_stroke(&[0.0, 255.0], &[128.0, 128.0], None); // a horizontal line
/// // Google centres by the maximum: y = 128 lands at (128 + 24 + (256 - 128) / 2) * 28 / 304 = 19.9 px.
/// let mut r = Rasterizer::new(RasterOptions::default()).unwrap();
/// let mut img = vec![0u8; 28 * 28];
/// r.render(&s, &mut img);
/// assert!(img[19 * 28 + 14] > 128); // ink on that row
/// assert_eq!(img[14 * 28 + 14], 0);
/// assert_eq!(img[0], 0); // background in the corner
/// ```
pub struct Rasterizer {
    opts: RasterOptions,
    /// The pen polygon's right boundary from its middle up: (height, half-width) breakpoints,
    /// height increasing. The polygon is symmetric about both axes (even vertex count, first
    /// vertex at angle 0), so its half-width at height dy is the interpolation at |dy|.
    pen_profile: Vec<(f64, f64)>,
    /// Highest y of the pen polygon.
    pen_top: f64,
    radius: f64,
    /// Per sub-row, the x intervals the current stroke covers.
    spans: Vec<Vec<(f32, f32)>>,
    touched: Vec<usize>,
    /// Pixel rows the current stroke reaches.
    rows_hit: Vec<usize>,
    /// The current stroke's coverage per pixel, 0..=1.
    cover: Vec<f32>,
    image: Vec<u8>,
}

impl Rasterizer {
    /// A renderer for `opts`; `None` if the size is 0 or above [`MAX_SIZE`], or the pen or
    /// padding is negative or not finite.
    pub fn new(opts: RasterOptions) -> Option<Self> {
        if !opts.is_valid() {
            return None;
        }
        let side = opts.size as usize;
        let scale =
            opts.size as f64 / (256.0 + 2.0 * opts.padding as f64 + opts.line_diameter as f64);
        let radius = opts.line_diameter as f64 / 2.0 * scale;
        let n = pen_vertices(radius);
        // Vertices from angle 0 up to the top (at most a quarter turn): heights increase.
        let pen_profile: Vec<(f64, f64)> = (0..=n / 4)
            .map(|i| {
                let th = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                (radius * th.sin(), radius * th.cos())
            })
            .collect();
        let pen_top = pen_profile.last().map_or(0.0, |p| p.0);
        Some(Rasterizer {
            opts,
            pen_profile,
            pen_top,
            radius,
            spans: vec![Vec::new(); side * SUB],
            touched: Vec::new(),
            rows_hit: Vec::new(),
            cover: vec![0.0; side * side],
            image: vec![0; side * side],
        })
    }

    /// The settings.
    pub fn options(&self) -> RasterOptions {
        self.opts
    }

    /// Renders `strokes` (simplified 0..=255 coordinates) into `out`, `size * size` bytes,
    /// row-major, 0 = background, 255 = ink.
    ///
    /// # Panics
    /// If `out` is not `size * size` bytes long (a programming error, not bad input).
    pub fn render(&mut self, strokes: &Strokes, out: &mut [u8]) {
        let side = self.opts.size as usize;
        assert_eq!(
            out.len(),
            side * side,
            "output buffer must be size * size bytes"
        );
        self.image.fill(0);
        if let Some((_, _, max_x, max_y)) = strokes.bounds() {
            let (scale, ox, oy) = self.opts.placement(max_x, max_y);
            for k in 0..strokes.len() {
                let (xs, ys, _) = strokes.stroke(k);
                let dev = |i: usize| ((xs[i] as f64 + ox) * scale, (ys[i] as f64 + oy) * scale);
                for i in 0..xs.len() {
                    let p = dev(i);
                    self.add_pen(p);
                    if i + 1 < xs.len() {
                        self.add_segment(p, dev(i + 1));
                    }
                }
                self.composite_stroke();
            }
        }
        out.copy_from_slice(&self.image);
    }

    /// Adds the pen polygon centred at `c` to the current stroke.
    fn add_pen(&mut self, c: (f64, f64)) {
        let (s0, s1) = self.sub_rows(c.1 - self.pen_top, c.1 + self.pen_top);
        for s in s0..s1 {
            let dy = (sub_row_y(s) - c.1).abs();
            let prof = &self.pen_profile;
            // The band holding dy; profiles have a handful of points.
            let mut k = 1;
            while k + 1 < prof.len() && prof[k].0 < dy {
                k += 1;
            }
            let ((y0, w0), (y1, w1)) = (prof[k - 1], prof[k]);
            let w = if y1 > y0 {
                w0 + (dy.min(y1) - y0) * (w1 - w0) / (y1 - y0)
            } else {
                w1
            };
            if w > 0.0 {
                self.push_span(s, c.0 - w, c.0 + w);
            }
        }
    }

    /// Adds the segment from `p` to `q` widened by the pen radius (no caps: pens do those).
    fn add_segment(&mut self, p: (f64, f64), q: (f64, f64)) {
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len = (dx * dx + dy * dy).sqrt();
        if len == 0.0 {
            return;
        }
        let (ux, uy) = (dx / len, dy / len);
        let r = self.radius;
        let ext = r * ux.abs();
        let (s0, s1) = self.sub_rows(p.1.min(q.1) - ext, p.1.max(q.1) + ext);
        // With x, y measured from p: along the segment t = x ux + y uy must lie in [0, len],
        // across it n = -x uy + y ux in [-r, r]. Each bound on x is A + B y with a fixed order,
        // so the interval is max of two lows and min of two highs, no division per sub-row.
        let band = |a: f64, lo: f64, hi: f64, b: f64| -> Option<[(f64, f64); 2]> {
            // x with a x + b y in [lo, hi]; None when a = 0 (a condition on y alone).
            (a != 0.0).then(|| {
                let (l, h) = ((lo / a, -b / a), (hi / a, -b / a));
                if a > 0.0 {
                    [l, h]
                } else {
                    [h, l]
                }
            })
        };
        let along = band(ux, 0.0, len, uy);
        let across = band(-uy, -r, r, ux);
        for s in s0..s1 {
            let y = sub_row_y(s) - p.1;
            let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
            match along {
                Some([l, h]) => {
                    lo = lo.max(l.0 + l.1 * y);
                    hi = hi.min(h.0 + h.1 * y);
                }
                None if !(0.0..=len).contains(&(y * uy)) => continue,
                None => {}
            }
            match across {
                Some([l, h]) => {
                    lo = lo.max(l.0 + l.1 * y);
                    hi = hi.min(h.0 + h.1 * y);
                }
                None if !(-r..=r).contains(&(y * ux)) => continue,
                None => {}
            }
            if lo < hi {
                self.push_span(s, p.0 + lo, p.0 + hi);
            }
        }
    }

    /// Sub-rows whose sample line lies in [y0, y1], clipped to the image.
    #[inline]
    fn sub_rows(&self, y0: f64, y1: f64) -> (usize, usize) {
        // Sub-row s samples y = (s + 0.5) / SUB: s in [ceil(SUB y0 - 0.5), floor(SUB y1 - 0.5)].
        // Shifted by 1 to stay non-negative, so casts can stand in for floor/ceil.
        let n = self.spans.len();
        let a = y0 * SUB as f64 + 0.5;
        let first = if a <= 0.0 {
            0
        } else {
            (a as usize + usize::from(a.fract() > 0.0)).saturating_sub(1)
        };
        let b = y1 * SUB as f64 + 0.5;
        if b < 1.0 {
            return (0, 0);
        }
        let last = (b as usize).min(n);
        let first = first.min(n);
        (first, last.max(first))
    }

    #[inline]
    fn push_span(&mut self, s: usize, lo: f64, hi: f64) {
        let row = &mut self.spans[s];
        if row.is_empty() {
            self.touched.push(s);
        }
        row.push((lo as f32, hi as f32));
    }

    /// Turns the stroke's spans into coverage, composites it, and clears them.
    fn composite_stroke(&mut self) {
        let side = self.opts.size as usize;
        let w = side as f32;
        let weight = 1.0 / SUB as f32;
        let mut rows_hit = std::mem::take(&mut self.rows_hit);
        rows_hit.clear();
        for &s in &self.touched {
            let spans = &mut self.spans[s];
            spans.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let row = s / SUB;
            if rows_hit.last() != Some(&row) {
                rows_hit.push(row);
            }
            let cover = &mut self.cover[row * side..(row + 1) * side];
            // Merge overlapping intervals so the union is counted once.
            let mut k = 0;
            while k < spans.len() {
                let (lo, mut hi) = spans[k];
                k += 1;
                while k < spans.len() && spans[k].0 <= hi {
                    hi = hi.max(spans[k].1);
                    k += 1;
                }
                let (lo, hi) = (lo.max(0.0), hi.min(w));
                if lo >= hi {
                    continue;
                }
                // Both are >= 0 here, so truncation is floor (no libm call on baseline x86-64).
                let first = lo as usize;
                let last = ((hi as usize) + 1).min(side);
                for (px, c) in cover[first..last].iter_mut().enumerate() {
                    let px = (first + px) as f32;
                    let x0 = lo.max(px);
                    let x1 = hi.min(px + 1.0);
                    if x1 > x0 {
                        *c += (x1 - x0) * weight;
                    }
                }
            }
            spans.clear();
        }
        self.touched.clear();
        rows_hit.sort_unstable();
        rows_hit.dedup();
        for &row in &rows_hit {
            let range = row * side..(row + 1) * side;
            for (v, c) in self.image[range.clone()]
                .iter_mut()
                .zip(&mut self.cover[range])
            {
                if *c > 0.0 {
                    let a = (c.min(1.0) * 255.0 + 0.5) as u32;
                    *v = (a + mul_un8(*v as u32, 255 - a)).min(255) as u8;
                    *c = 0.0;
                }
            }
        }
        self.rows_hit = rows_hit;
    }
}

/// cairo's pen: the fewest vertices (even, at least 4) keeping a polygon within TOLERANCE of a
/// circle of `radius` pixels.
fn pen_vertices(radius: f64) -> usize {
    if TOLERANCE >= 4.0 * radius {
        return 4;
    }
    if TOLERANCE >= radius {
        return 4;
    }
    let step = (1.0 - TOLERANCE / radius).acos();
    if step == 0.0 {
        return 4;
    }
    let mut n = (2.0 * std::f64::consts::PI / step).ceil() as usize;
    if n % 2 == 1 {
        n += 1;
    }
    n.max(4)
}

/// The sample line of sub-row `s`: the centre of its 1/15 of a pixel.
#[inline]
fn sub_row_y(s: usize) -> f64 {
    (s as f64 + 0.5) / SUB as f64
}

/// x * a / 255, rounded as pixman's MUL_UN8 does.
#[inline]
fn mul_un8(x: u32, a: u32) -> u32 {
    let t = x * a + 0x80;
    (t + (t >> 8)) >> 8
}

/// Renders one drawing with `opts`; `None` for invalid options (see [`Rasterizer::new`]).
///
/// ```
/// use mouton_data::{rasterize, RasterOptions, Strokes};
/// let mut s = Strokes::default();
/// s.push_stroke(&[128.0], &[128.0], None); // a single dot, drawn as cairo's round cap
/// let img = rasterize(&s, &RasterOptions { size: 64, ..Default::default() }).unwrap();
/// assert_eq!(img.len(), 64 * 64);
/// // centred by its maximum: (128 + 24 + 64) * 64 / 304 = 45.5 px on both axes
/// assert_eq!(img[45 * 64 + 45], 255);
/// // a pen of radius 8 * 64 / 304 = 1.7 px: all ink within rows and columns 43..=47
/// for (k, &v) in img.iter().enumerate() {
///     let (row, col) = (k / 64, k % 64);
///     assert!(v == 0 || ((43..=47).contains(&row) && (43..=47).contains(&col)));
/// }
/// ```
pub fn rasterize(strokes: &Strokes, opts: &RasterOptions) -> Option<Vec<u8>> {
    let mut r = Rasterizer::new(*opts)?;
    let mut out = vec![0u8; (opts.size * opts.size) as usize];
    r.render(strokes, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pen_matches_cairos_vertex_counts() {
        // 28 px: radius 8 * 28 / 304 = 0.737 px -> 12 vertices; 64 px: 1.684 px -> 20.
        assert_eq!(pen_vertices(8.0 * 28.0 / 304.0), 12);
        assert_eq!(pen_vertices(8.0 * 64.0 / 304.0), 20);
        assert_eq!(pen_vertices(0.05), 4);
    }

    #[test]
    fn pixman_rounding() {
        assert_eq!(mul_un8(255, 255), 255);
        assert_eq!(mul_un8(255, 0), 0);
        assert_eq!(mul_un8(128, 128), 64);
    }

    #[test]
    fn full_pixels_are_white_and_overlaps_saturate() {
        // A bar 5 px thick centred at y = (128 + 48 + 64) * 28 / 352 = 19.1 px: rows 17..=20 are
        // fully covered, twice over.
        let mut s = Strokes::default();
        s.push_stroke(&[0.0, 255.0], &[128.0, 128.0], None);
        s.push_stroke(&[0.0, 255.0], &[128.0, 128.0], None);
        let opts = RasterOptions {
            size: 28,
            line_diameter: 64.0,
            padding: 16.0,
        };
        let img = rasterize(&s, &opts).unwrap();
        for row in 17..=20 {
            assert_eq!(img[row * 28 + 14], 255, "row {row}");
        }
        assert_eq!(img[14 * 28 + 14], 0);
    }
}
