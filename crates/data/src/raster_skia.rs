//! The same recipe rendered with tiny-skia, kept to measure against the [`Rasterizer`](crate::Rasterizer)
//! (its coverage differs from cairo's by about two grey levels on average; see BENCHMARKS.md).

use tiny_skia::{LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform};

use crate::raster::RasterOptions;
use crate::Strokes;

/// Google's recipe on tiny-skia; one per thread, so the pixel buffer is allocated once.
///
/// ```
/// use mouton_data::{RasterOptions, SkiaRasterizer, Strokes};
/// let mut s = Strokes::default();
/// s.push_stroke(&[0.0, 255.0], &[128.0, 128.0], None); // a horizontal line
/// // Google centres by the maximum: y = 128 lands at (128 + 24 + (256 - 128) / 2) * 28 / 304 = 19.9 px.
/// let mut r = SkiaRasterizer::new(RasterOptions::default()).unwrap();
/// let mut img = vec![0u8; 28 * 28];
/// r.render(&s, &mut img);
/// assert!(img[19 * 28 + 14] > 128); // ink on that row
/// assert_eq!(img[14 * 28 + 14], 0);
/// assert_eq!(img[0], 0); // background in the corner
/// ```
pub struct SkiaRasterizer {
    opts: RasterOptions,
    pixmap: Pixmap,
    paint: Paint<'static>,
    stroke: Stroke,
    path: PathBuilder,
}

impl SkiaRasterizer {
    /// A renderer for `opts`; `None` if the size is 0 or above [`MAX_SIZE`](crate::MAX_SIZE),
    /// or the pen or padding is negative or not finite.
    pub fn new(opts: RasterOptions) -> Option<Self> {
        if !opts.is_valid() {
            return None;
        }
        let pixmap = Pixmap::new(opts.size, opts.size)?;
        let mut paint = Paint::default();
        paint.set_color_rgba8(255, 255, 255, 255);
        paint.anti_alias = true;
        let stroke = Stroke {
            width: opts.line_diameter,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        Some(SkiaRasterizer {
            opts,
            pixmap,
            paint,
            stroke,
            path: PathBuilder::new(),
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
        self.pixmap.fill(tiny_skia::Color::BLACK);
        if let Some((_, _, max_x, max_y)) = strokes.bounds() {
            let (scale, ox, oy) = self.opts.placement(max_x, max_y);
            let (scale, tx, ty) = (scale as f32, (scale * ox) as f32, (scale * oy) as f32);
            let transform = Transform::from_row(scale, 0.0, 0.0, scale, tx, ty);
            for k in 0..strokes.len() {
                let (xs, ys, _) = strokes.stroke(k);
                let mut pb = std::mem::take(&mut self.path);
                pb.move_to(xs[0], ys[0]);
                // Google's loop draws a line to every point, the first one included: a
                // one-point stroke is a zero-length line, which round caps turn into a dot.
                for (&x, &y) in xs.iter().zip(ys) {
                    pb.line_to(x, y);
                }
                if let Some(path) = pb.finish() {
                    self.pixmap
                        .stroke_path(&path, &self.paint, &self.stroke, transform, None);
                    self.path = path.clear();
                } else {
                    self.path = PathBuilder::new();
                }
            }
        }
        // Opaque white over black: every channel holds the coverage; keep one.
        for (o, px) in out.iter_mut().zip(self.pixmap.data().chunks_exact(4)) {
            *o = px[0];
        }
    }
}
