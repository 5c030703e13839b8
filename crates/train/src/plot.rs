//! `loss.png`: the critic's and the generator's losses against the step (plotters, bitmap
//! backend). The chart has no text (plotters' text needs a font stack this project does not
//! ship): critic loss in red, generator loss in blue, gradient penalty in green, a grey
//! horizontal line at 0 when the range crosses it, light grid lines at the quarters.
//! `mouton history` prints the numbers. Also a VAE's latent space as a scatter of points.

use std::path::Path;

use plotters::prelude::*;

use crate::metrics::StepRecord;
use crate::TrainError;

/// Per-bucket means, so thousands of steps draw as a readable curve.
fn smooth(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if points.len() <= buckets {
        return points.to_vec();
    }
    points
        .chunks(points.len().div_ceil(buckets))
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// Draws the losses of `steps` into a PNG at `path` (written atomically).
///
/// ```
/// use mouton_train::metrics::StepRecord;
/// # let dir = tempfile::tempdir()?;
/// let rec = |step: u64| StepRecord {
///     kind: "step".into(), step, epoch: 1, d_loss: 1.0 / step as f64, g_loss: 0.5,
///     gp: None, d_real: 0.0, d_fake: 0.0, grad_norm_d: 1.0, grad_norm_g: 1.0,
///     images_per_s: 100.0, recon: None, kl: None, kl_weight: None,
/// };
/// let steps: Vec<StepRecord> = (1..=50).map(rec).collect();
/// let path = dir.path().join("loss.png");
/// mouton_train::plot::loss_png(&steps, &path)?;
/// let img = image::open(&path)?.to_rgb8();
/// assert_eq!(img.dimensions(), (800, 480));
/// // The critic's curve is drawn in red.
/// assert!(img.pixels().any(|p| p.0[0] > 200 && p.0[1] < 80 && p.0[2] < 80));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn loss_png(steps: &[StepRecord], path: &Path) -> Result<(), TrainError> {
    let (w, h) = (800u32, 480u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    let fail = |e: String| TrainError::Metric(format!("{}: {e}", path.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let series = |f: &dyn Fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            let pts: Vec<(f64, f64)> = steps
                .iter()
                .filter_map(|s| f(s).map(|v| (s.step as f64, v)))
                .filter(|p| p.1.is_finite())
                .collect();
            smooth(&pts, 400)
        };
        let d = series(&|s| Some(s.d_loss));
        let g = series(&|s| Some(s.g_loss));
        let gp = series(&|s| s.gp);
        let all: Vec<&(f64, f64)> = d.iter().chain(&g).chain(&gp).collect();
        if !all.is_empty() {
            let (x0, x1) = all
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let (y0, y1) = all
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
            let pad = ((y1 - y0) * 0.05).max(1e-6);
            let (y0, y1) = (y0 - pad, y1 + pad);
            let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
            let mut chart = ChartBuilder::on(&root)
                .margin(20)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| fail(e.to_string()))?;
            let grid = RGBColor(225, 225, 225);
            for q in 1..4 {
                let y = y0 + (y1 - y0) * q as f64 / 4.0;
                let x = x0 + (x1 - x0) * q as f64 / 4.0;
                chart
                    .draw_series(LineSeries::new([(x0, y), (x1, y)], grid))
                    .map_err(|e| fail(e.to_string()))?;
                chart
                    .draw_series(LineSeries::new([(x, y0), (x, y1)], grid))
                    .map_err(|e| fail(e.to_string()))?;
            }
            if y0 < 0.0 && y1 > 0.0 {
                chart
                    .draw_series(LineSeries::new(
                        [(x0, 0.0), (x1, 0.0)],
                        RGBColor(140, 140, 140),
                    ))
                    .map_err(|e| fail(e.to_string()))?;
            }
            for (pts, color) in [(d, RED), (g, BLUE), (gp, GREEN)] {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    write_rgb_png(path, w, h, buf)
}

/// The colours of [`latent_scatter_png`]'s groups, in order (Tableau 10), with their names.
pub const PALETTE: [(&str, (u8, u8, u8)); 10] = [
    ("blue", (31, 119, 180)),
    ("orange", (255, 127, 14)),
    ("green", (44, 160, 44)),
    ("red", (214, 39, 40)),
    ("purple", (148, 103, 189)),
    ("brown", (140, 86, 75)),
    ("pink", (227, 119, 194)),
    ("grey", (127, 127, 127)),
    ("olive", (188, 189, 34)),
    ("cyan", (23, 190, 207)),
];

/// The square frame [`latent_scatter_png`] drew: `x` and `y` ranges of equal length, grid
/// lines every `grid` (darker through 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// The horizontal range (the first coordinate).
    pub x: (f64, f64),
    /// The vertical range (the second coordinate, growing upwards).
    pub y: (f64, f64),
    /// The spacing of the grid lines.
    pub grid: f64,
}

/// The smallest 1-2-5 step that needs at most 10 grid lines across `side`.
fn grid_step(side: f64) -> f64 {
    let mut step = 10f64.powf((side / 10.0).log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if side / (step * m) <= 10.0 {
            step *= m;
            break;
        }
    }
    step
}

/// Draws 2-D points (groups of interleaved `x, y` pairs, one colour of [`PALETTE`] each) as
/// a square scatter PNG of `px` pixels a side at `path` (written atomically): both axes at
/// the same scale, the frame the smallest square (plus 5%) that holds every point and the
/// origin, centred on them. The groups'
/// points are drawn in turn (point 1 of each, then point 2...), so no group hides another
/// by being drawn last. At most 10 groups; points must be finite.
///
/// ```
/// use mouton_train::plot::{latent_scatter_png, PALETTE};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("latent.png");
/// let frame = latent_scatter_png(&[&[2.0, 1.0], &[-1.0, -1.5]], 200, &path)?;
/// // 3 x 2.5 of points, so a square of side 3 x 1.05 centred on (0.5, -0.25).
/// let close = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() + (a.1 - b.1).abs() < 1e-12;
/// assert!(close(frame.x, (-1.075, 2.075)) && close(frame.y, (-1.825, 1.325)), "{frame:?}");
/// assert_eq!(frame.grid, 0.5);
/// let img = image::open(&path)?.to_rgb8();
/// // The first group's point (2, 1) in blue (60% over white), the second's (-1, -1.5) in
/// // orange, with 10-pixel margins around the plot.
/// let at = |x: f64, y: f64| {
///     let s = 180.0 / 3.15;
///     img.get_pixel((10.0 + (x + 1.075) * s).round() as u32, (10.0 + (1.325 - y) * s).round() as u32).0
/// };
/// let [r, _, b] = at(2.0, 1.0);
/// assert!(b > r + 60, "{r} {b}");
/// let [r, _, b] = at(-1.0, -1.5);
/// assert!(r > b + 60, "{r} {b}");
/// assert_eq!(PALETTE[..2].iter().map(|c| c.0).collect::<Vec<_>>(), ["blue", "orange"]);
/// // Eleven groups are more colours than there are.
/// let origin: &[f32] = &[0.0, 0.0];
/// assert!(latent_scatter_png(&[origin; 11], 200, &path).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn latent_scatter_png(groups: &[&[f32]], px: u32, path: &Path) -> Result<Frame, TrainError> {
    let fail = |e: String| TrainError::Metric(format!("{}: {e}", path.display()));
    if groups.len() > PALETTE.len() {
        return Err(fail(format!(
            "{} groups of points, but there are {} colours",
            groups.len(),
            PALETTE.len()
        )));
    }
    if let Some(g) = groups.iter().find(|g| g.len() % 2 != 0) {
        return Err(fail(format!(
            "{} coordinates are not (x, y) pairs",
            g.len()
        )));
    }
    if groups.iter().flat_map(|g| g.iter()).any(|v| !v.is_finite()) {
        return Err(fail("a point is not finite".into()));
    }
    if !(64..=8192).contains(&px) {
        return Err(fail(format!("{px} pixels: the side must be 64 to 8192")));
    }
    let (mut lo, mut hi) = ([0f64; 2], [0f64; 2]);
    for g in groups {
        for p in g.chunks(2) {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k] as f64);
                hi[k] = hi[k].max(p[k] as f64);
            }
        }
    }
    let half = ((hi[0] - lo[0]).max(hi[1] - lo[1]) * 0.525).max(0.5);
    let range = |k: usize| {
        let c = (lo[k] + hi[k]) / 2.0;
        (c - half, c + half)
    };
    let frame = Frame {
        x: range(0),
        y: range(1),
        grid: grid_step(2.0 * half),
    };
    let ((x0, x1), (y0, y1), grid) = (frame.x, frame.y, frame.grid);
    let mut buf = vec![0u8; (px * px * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (px, px)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let margin = (px / 20).max(4);
        let mut chart = ChartBuilder::on(&root)
            .margin(margin)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fail(e.to_string()))?;
        let line = |k: i64| {
            if k == 0 {
                RGBColor(140, 140, 140)
            } else {
                RGBColor(225, 225, 225)
            }
        };
        for k in (x0 / grid).ceil() as i64..=(x1 / grid).floor() as i64 {
            let v = k as f64 * grid;
            chart
                .draw_series(LineSeries::new([(v, y0), (v, y1)], line(k)))
                .map_err(|e| fail(e.to_string()))?;
        }
        for k in (y0 / grid).ceil() as i64..=(y1 / grid).floor() as i64 {
            let v = k as f64 * grid;
            chart
                .draw_series(LineSeries::new([(x0, v), (x1, v)], line(k)))
                .map_err(|e| fail(e.to_string()))?;
        }
        let radius = (px / 300).max(2) as i32;
        let longest = groups.iter().map(|g| g.len() / 2).max().unwrap_or(0);
        let points = (0..longest).flat_map(|i| {
            groups.iter().enumerate().filter_map(move |(k, g)| {
                let (x, y) = (*g.get(2 * i)?, *g.get(2 * i + 1)?);
                let (r, gr, b) = PALETTE[k].1;
                Some(Circle::new(
                    (x as f64, y as f64),
                    radius,
                    RGBColor(r, gr, b).mix(0.6).filled(),
                ))
            })
        });
        chart.draw_series(points).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    write_rgb_png(path, px, px, buf)?;
    Ok(frame)
}

/// Writes a drawn RGB buffer as a PNG, atomically.
fn write_rgb_png(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> Result<(), TrainError> {
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| TrainError::Metric(format!("{}: buffer size", path.display())))?;
    mouton_data::write_atomically(path, |f| {
        img.write_to(f, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })?;
    Ok(())
}
