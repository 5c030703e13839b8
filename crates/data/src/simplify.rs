//! Google's simplification of raw drawings into the 0..=255 "simplified" form.
//!
//! The dataset's README recipe: align the drawing to the top-left corner (minimum 0), scale it
//! uniformly so its larger side spans 0..=255, resample every stroke at 1-pixel spacing, simplify
//! with Ramer-Douglas-Peucker at epsilon 2.0, and round. The simplified files never hold a
//! one-point stroke: a stroke that collapses to one point keeps two identical points.

use crate::Strokes;

/// RDP tolerance, in pixels of the 256-space.
pub const RDP_EPSILON: f64 = 2.0;

/// Reusable buffers for [`Simplifier::simplify_into`], so a stream of drawings allocates nothing per drawing.
#[derive(Debug, Default)]
pub struct Simplifier {
    pts: Vec<(f64, f64)>,
    cum: Vec<f64>,
    keep: Vec<bool>,
    stack: Vec<(usize, usize)>,
}

/// Simplifies a raw drawing the way Google made its simplified files.
///
/// ```
/// use mouton_data::{simplify, Strokes};
/// let mut raw = Strokes::default();
/// // A nearly straight stroke in device pixels far from the origin; the drawing spans 100 px,
/// // so it is scaled by 2.55 and its 0.5 px wobble becomes 1.3 px, under RDP's epsilon of 2.
/// raw.push_stroke(&[1000.0, 1050.0, 1100.0], &[500.0, 500.5, 500.0], None);
/// raw.push_stroke(&[1100.0], &[600.0], None); // a single tap
/// let s = simplify(&raw);
/// assert_eq!(s.stroke(0).0, &[0.0, 255.0]); // the wobble is gone, the span scaled to 255
/// assert_eq!(s.stroke(1).0, &[255.0, 255.0]); // one point becomes two
/// # assert_eq!(s.stroke(1).1, &[255.0, 255.0]);
/// ```
pub fn simplify(raw: &Strokes) -> Strokes {
    let mut out = Strokes::default();
    Simplifier::default().simplify_into(raw, &mut out);
    out
}

impl Simplifier {
    /// Simplifies `raw` into `out` (cleared first), reusing this simplifier's buffers.
    pub fn simplify_into(&mut self, raw: &Strokes, out: &mut Strokes) {
        out.clear();
        let Some((x0, y0, x1, y1)) = raw.bounds() else {
            return;
        };
        let (x0, y0) = (x0 as f64, y0 as f64);
        let span = (x1 as f64 - x0).max(y1 as f64 - y0);
        let scale = if span > 0.0 { 255.0 / span } else { 1.0 };
        for k in 0..raw.len() {
            let (xs, ys, _) = raw.stroke(k);
            self.resample(xs, ys, x0, y0, scale);
            self.rdp();
            let start = out.x.len();
            for (p, &keep) in self.pts.iter().zip(&self.keep) {
                if keep {
                    out.x.push(p.0.round_ties_even() as f32);
                    out.y.push(p.1.round_ties_even() as f32);
                }
            }
            if out.x.len() - start == 1 {
                out.x.push(out.x[start]);
                out.y.push(out.y[start]);
            }
            out.ends.push(out.x.len() as u32);
        }
    }

    /// Aligned and scaled points of one stroke, resampled at arc lengths 0, 1, 2, ... below its
    /// length (linear interpolation on cumulative distance, as numpy's `interp` does), plus the
    /// last point. Raw vertices are not kept as such: Google's output shows only samples.
    fn resample(&mut self, xs: &[f32], ys: &[f32], x0: f64, y0: f64, scale: f64) {
        self.pts.clear();
        self.cum.clear();
        let at = |i: usize| ((xs[i] as f64 - x0) * scale, (ys[i] as f64 - y0) * scale);
        let n = xs.len();
        self.cum.push(0.0);
        for i in 1..n {
            let (a, b) = (at(i - 1), at(i));
            let d = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
            self.cum.push(self.cum[i - 1] + d);
        }
        let total = self.cum[n - 1];
        let mut j = 0;
        let mut k = 0u32;
        while (k as f64) < total {
            let t = k as f64;
            while j + 2 < n && self.cum[j + 1] <= t {
                j += 1;
            }
            let (a, b) = (at(j), at(j + 1));
            let span = self.cum[j + 1] - self.cum[j];
            self.pts.push(if span == 0.0 {
                a
            } else {
                let u = (t - self.cum[j]) / span;
                (a.0 + (b.0 - a.0) * u, a.1 + (b.1 - a.1) * u)
            });
            k += 1;
        }
        if self.pts.is_empty() {
            self.pts.push(at(0));
        }
        let last = at(n - 1);
        if self.pts.last() != Some(&last) {
            self.pts.push(last);
        }
    }

    /// Marks the points Ramer-Douglas-Peucker keeps at [`RDP_EPSILON`].
    fn rdp(&mut self) {
        let n = self.pts.len();
        self.keep.clear();
        self.keep.resize(n, false);
        self.keep[0] = true;
        self.keep[n - 1] = true;
        self.stack.clear();
        if n > 2 {
            self.stack.push((0, n - 1));
        }
        while let Some((a, b)) = self.stack.pop() {
            let (pa, pb) = (self.pts[a], self.pts[b]);
            let (mut far, mut dmax) = (a, 0.0);
            for i in a + 1..b {
                let d = line_distance_sq(self.pts[i], pa, pb);
                if d > dmax {
                    dmax = d;
                    far = i;
                }
            }
            if dmax > RDP_EPSILON * RDP_EPSILON {
                self.keep[far] = true;
                if far - a > 1 {
                    self.stack.push((a, far));
                }
                if b - far > 1 {
                    self.stack.push((far, b));
                }
            }
        }
    }
}

/// Squared distance from `p` to the line through `a` and `b` (to `a` when they coincide), as the
/// residual of `p`'s projection on the line.
///
/// Mathematically any distance formula will do, but a 1-px resampling often puts several samples
/// at exactly the same distance (a stroke segment parallel to the chord), and the rounding of the
/// formula then decides which one RDP keeps. This form breaks those ties the way Google's files
/// do more often than the cross-product form: 23/23 shared sheep and 244/256 drawings against
/// 22/23 and 244/256 (`tests/golden_simplify.rs`).
fn line_distance_sq(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (px, py) = (p.0 - a.0, p.1 - a.1);
    let len_sq = dx * dx + dy * dy;
    if len_sq == 0.0 {
        return px * px + py * py;
    }
    let t = (px * dx + py * dy) / len_sq;
    let (ex, ey) = (px - t * dx, py - t * dy);
    ex * ex + ey * ey
}
