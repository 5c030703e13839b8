//! Nearest-neighbour upsampling by an integer factor on NCHW data (Keras `UpSampling2D`).

use rayon::prelude::*;

use super::Real;

/// `out[n, c, y, x] = x[n, c, y / f, x / f]` for `planes` = N C planes of `h x w`.
///
/// ```
/// use mouton_models::ops::upsample::upsample_nearest_forward;
/// let mut out = [0.0f32; 8];
/// upsample_nearest_forward(&[1.0, 2.0], 1, 1, 2, 2, &mut out);
/// assert_eq!(out, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// ```
pub fn upsample_nearest_forward<T: Real>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    f: usize,
    out: &mut [T],
) {
    assert!(
        x.len() == planes * h * w && out.len() == x.len() * f * f && f > 0,
        "slice sizes"
    );
    out.par_chunks_mut(h * w * f * f)
        .zip(x.par_chunks(h * w))
        .for_each(|(o, p)| {
            for y in 0..h * f {
                let src = &p[(y / f) * w..(y / f + 1) * w];
                let row = &mut o[y * w * f..(y + 1) * w * f];
                for (k, v) in row.iter_mut().enumerate() {
                    *v = src[k / f];
                }
            }
        });
}

/// `grad_x += ` the sum of each `f x f` block of `grad_out`.
///
/// ```
/// use mouton_models::ops::upsample::upsample_nearest_backward;
/// // One 1x2 plane upsampled x2 (to 2x4): each input pixel fed a 2x2 block.
/// let grad_out = [1.0f32, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0];
/// let mut grad_x = [100.0f32, 0.0]; // gradients accumulate
/// upsample_nearest_backward(&grad_out, 1, 1, 2, 2, &mut grad_x);
/// assert_eq!(grad_x, [110.0, 100.0]);
/// ```
pub fn upsample_nearest_backward<T: Real>(
    grad_out: &[T],
    planes: usize,
    h: usize,
    w: usize,
    f: usize,
    grad_x: &mut [T],
) {
    assert!(
        grad_x.len() == planes * h * w && grad_out.len() == grad_x.len() * f * f && f > 0,
        "slice sizes"
    );
    grad_x
        .par_chunks_mut(h * w)
        .zip(grad_out.par_chunks(h * w * f * f))
        .for_each(|(g, go)| {
            for y in 0..h * f {
                let row = &go[y * w * f..(y + 1) * w * f];
                let dst = &mut g[(y / f) * w..(y / f + 1) * w];
                for (k, &v) in row.iter().enumerate() {
                    dst[k / f] += v;
                }
            }
        });
}
