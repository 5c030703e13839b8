//! `loss.png`: the critic's and the generator's losses against the step (plotters, bitmap
//! backend). The chart has no text (plotters' text needs a font stack this project does not
//! ship): critic loss in red, generator loss in blue, gradient penalty in green, a grey
//! horizontal line at 0 when the range crosses it, light grid lines at the quarters.
//! `mouton history` prints the numbers.

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
///     images_per_s: 100.0, recon: None, kl: None,
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
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| fail("buffer size".into()))?;
    mouton_data::write_atomically(path, |f| {
        img.write_to(f, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })?;
    Ok(())
}
