//! A fully connected layer, `y = x W^T + b` for a batch `x` (N x I), weights `W` (O x I) and
//! bias `b` (O), and its gradients, on row-major slices.
//!
//! Narrow layers (a discriminator's 2048 -> 1 logit) run as dot products and `axpy`s: a GEMM
//! library's packing costs far more than the product there. Wide ones go through the GEMM in
//! blocks of rows on all threads. Every sum runs in an order fixed by the shapes alone, so the
//! results do not depend on the thread count.

use rayon::prelude::*;

use super::matmul::{dot, matmul, Mat};
use super::Real;

/// The sizes of a fully connected layer: batch, inputs, outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseShape {
    /// Rows of the batch (N).
    pub batch: usize,
    /// Inputs per row (I).
    pub inputs: usize,
    /// Outputs per row (O).
    pub outputs: usize,
}

impl DenseShape {
    /// Element counts of x, W and y.
    ///
    /// ```
    /// let s = mouton_models::ops::dense::DenseShape { batch: 64, inputs: 2048, outputs: 1 };
    /// assert_eq!(s.sizes(), (131_072, 2048, 64));
    /// ```
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.batch * self.inputs,
            self.outputs * self.inputs,
            self.batch * self.outputs,
        )
    }

    fn narrow(&self) -> bool {
        self.outputs < NARROW
    }

    /// Rows per parallel task: none (one task) for small products.
    fn rows_per_task(&self) -> usize {
        if self.batch * self.inputs * self.outputs < PARALLEL_WORK {
            self.batch.max(1)
        } else {
            ROWS
        }
    }

    fn check(&self, x: usize, w: usize, y: usize) {
        assert!(
            (x, w, y) == self.sizes(),
            "slice sizes {:?} for {self:?}",
            (x, w, y)
        );
    }
}

/// Fewer outputs than this: dot products instead of a GEMM.
const NARROW: usize = 8;
/// Multiply-adds below which one thread does the whole product.
const PARALLEL_WORK: usize = 1 << 20;
/// Rows per parallel task otherwise.
const ROWS: usize = 16;

/// `y = x W^T + b` (`bias` of `None`: no bias).
///
/// ```
/// use mouton_models::ops::dense::{dense_forward, DenseShape};
/// let s = DenseShape { batch: 2, inputs: 3, outputs: 1 };
/// let mut y = [0.0f32; 2];
/// dense_forward(&s, &[1.0, 2.0, 3.0, 0.0, 0.0, 1.0], &[1.0, 1.0, 2.0], Some(&[0.5]), &mut y);
/// assert_eq!(y, [9.5, 2.5]);
/// ```
pub fn dense_forward<T: Real>(s: &DenseShape, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    s.check(x.len(), w.len(), y.len());
    if let Some(b) = bias {
        assert_eq!(b.len(), s.outputs, "bias size");
    }
    if s.batch == 0 || s.outputs == 0 {
        return;
    }
    let (i, o, rows) = (s.inputs, s.outputs, s.rows_per_task());
    if i == 0 {
        match bias {
            Some(b) => y.chunks_exact_mut(o).for_each(|yr| yr.copy_from_slice(b)),
            None => y.fill(T::ZERO),
        }
        return;
    }
    y.par_chunks_mut(rows * o)
        .zip(x.par_chunks(rows * i))
        .for_each(|(yb, xb)| {
            if s.narrow() {
                for (yr, xr) in yb.chunks_exact_mut(o).zip(xb.chunks_exact(i)) {
                    for (v, wk) in yr.iter_mut().zip(w.chunks_exact(i)) {
                        *v = dot(xr, wk);
                    }
                }
            } else {
                matmul(Mat::new(xb, yb.len() / o, i), Mat::t(w, o, i), yb, false);
            }
            if let Some(b) = bias {
                for yr in yb.chunks_exact_mut(o) {
                    for (v, &bk) in yr.iter_mut().zip(b) {
                        *v += bk;
                    }
                }
            }
        });
}

/// `grad_x += grad_y W`.
///
/// ```
/// use mouton_models::ops::dense::{dense_backward_input, DenseShape};
/// let s = DenseShape { batch: 2, inputs: 3, outputs: 1 };
/// let mut gx = [1.0f32; 6];
/// dense_backward_input(&s, &[1.0, 1.0, 2.0], &[1.0, -1.0], &mut gx);
/// assert_eq!(gx, [2.0, 2.0, 3.0, 0.0, 0.0, -1.0]);
/// ```
pub fn dense_backward_input<T: Real>(s: &DenseShape, w: &[T], grad_y: &[T], grad_x: &mut [T]) {
    s.check(grad_x.len(), w.len(), grad_y.len());
    if s.batch == 0 || s.inputs == 0 || s.outputs == 0 {
        return;
    }
    let (i, o, rows) = (s.inputs, s.outputs, s.rows_per_task());
    grad_x
        .par_chunks_mut(rows * i)
        .zip(grad_y.par_chunks(rows * o))
        .for_each(|(gx, gy)| {
            if s.narrow() {
                for (gxr, gyr) in gx.chunks_exact_mut(i).zip(gy.chunks_exact(o)) {
                    for (&g, wk) in gyr.iter().zip(w.chunks_exact(i)) {
                        axpy(g, wk, gxr);
                    }
                }
            } else {
                matmul(Mat::new(gy, gy.len() / o, o), Mat::new(w, o, i), gx, true);
            }
        });
}

/// `grad_w += grad_y^T x`, summed over the batch in row order.
///
/// ```
/// use mouton_models::ops::dense::{dense_backward_weights, DenseShape};
/// let s = DenseShape { batch: 2, inputs: 3, outputs: 1 };
/// let mut gw = [0.0f32; 3];
/// dense_backward_weights(&s, &[1.0, 2.0, 3.0, 0.0, 0.0, 1.0], &[1.0, 2.0], &mut gw);
/// assert_eq!(gw, [1.0, 2.0, 5.0]);
/// ```
pub fn dense_backward_weights<T: Real>(s: &DenseShape, x: &[T], grad_y: &[T], grad_w: &mut [T]) {
    s.check(x.len(), grad_w.len(), grad_y.len());
    if s.batch == 0 || s.inputs == 0 || s.outputs == 0 {
        return;
    }
    let (n, i, o) = (s.batch, s.inputs, s.outputs);
    if s.narrow() {
        // Columns of W in parallel blocks, each summed over the rows in order.
        let cols = if n * i * o < PARALLEL_WORK { i } else { 256 };
        for (k, gwk) in grad_w.chunks_exact_mut(i).enumerate() {
            gwk.par_chunks_mut(cols).enumerate().for_each(|(b, gw)| {
                for (xr, gyr) in x.chunks_exact(i).zip(grad_y.chunks_exact(o)) {
                    axpy(gyr[k], &xr[b * cols..][..gw.len()], gw);
                }
            });
        }
    } else {
        // Blocks of W's rows in parallel, each one product over the whole batch.
        let rows = if n * i * o < PARALLEL_WORK { o } else { ROWS };
        grad_w
            .par_chunks_mut(rows * i)
            .enumerate()
            .for_each(|(b, gw)| {
                let r = gw.len() / i;
                matmul(
                    Mat::t_block(&grad_y[b * rows..], n, r, o),
                    Mat::new(x, n, i),
                    gw,
                    true,
                );
            });
    }
}

/// `grad_b += ` the column sums of `grad_y`, in row order.
///
/// ```
/// use mouton_models::ops::dense::{dense_backward_bias, DenseShape};
/// let s = DenseShape { batch: 3, inputs: 4, outputs: 2 };
/// let mut gb = [0.5f32, 0.0];
/// dense_backward_bias(&s, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut gb);
/// assert_eq!(gb, [9.5, 12.0]);
/// ```
pub fn dense_backward_bias<T: Real>(s: &DenseShape, grad_y: &[T], grad_b: &mut [T]) {
    assert!(
        grad_y.len() == s.batch * s.outputs && grad_b.len() == s.outputs,
        "slice sizes"
    );
    if s.outputs == 0 {
        return;
    }
    for gyr in grad_y.chunks_exact(s.outputs) {
        for (b, &g) in grad_b.iter_mut().zip(gyr) {
            *b += g;
        }
    }
}

/// `y += a x`.
fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (v, &u) in y.iter_mut().zip(x) {
        *v += a * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer and its gradients from their definitions, in f64.
    fn reference(
        s: &DenseShape,
        x: &[f64],
        w: &[f64],
        b: &[f64],
        gy: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let (n, i, o) = (s.batch, s.inputs, s.outputs);
        let mut y = vec![0.0; n * o];
        let (mut gx, mut gw, mut gb) = (vec![0.0; n * i], vec![0.0; o * i], vec![0.0; o]);
        for r in 0..n {
            for k in 0..o {
                y[r * o + k] = b[k] + (0..i).map(|j| x[r * i + j] * w[k * i + j]).sum::<f64>();
                gb[k] += gy[r * o + k];
                for j in 0..i {
                    gx[r * i + j] += gy[r * o + k] * w[k * i + j];
                    gw[k * i + j] += gy[r * o + k] * x[r * i + j];
                }
            }
        }
        (y, gx, gw, gb)
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // A small deterministic generator: distinct, non-round values.
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn narrow_wide_small_and_parallel_shapes_match_the_definition() {
        // Narrow and wide layers (dot products vs GEMM), below and above the parallel
        // threshold, with batch and input sizes that leave partial blocks; empty edges too.
        for &(n, i, o) in &[
            (3, 5, 1),
            (64, 2048, 1),
            (7, 33, 3),
            (5, 17, 40),
            (64, 128, 300),
            (37, 1000, 30),
            (0, 4, 2),
            (3, 0, 2),
            (3, 4, 0),
        ] {
            let s = DenseShape {
                batch: n,
                inputs: i,
                outputs: o,
            };
            let (x, w, b, gy) = (
                values(n * i, 1),
                values(o * i, 2),
                values(o, 3),
                values(n * o, 4),
            );
            let (ry, rgx, rgw, rgb) = reference(&s, &x, &w, &b, &gy);
            let mut y = vec![f64::NAN; n * o];
            dense_forward(&s, &x, &w, Some(&b), &mut y);
            // Gradients accumulate onto what is there.
            let (mut gx, mut gw, mut gb) = (vec![1.0; n * i], vec![1.0; o * i], vec![1.0; o]);
            dense_backward_input(&s, &w, &gy, &mut gx);
            dense_backward_weights(&s, &x, &gy, &mut gw);
            dense_backward_bias(&s, &gy, &mut gb);
            let close = |a: &[f64], r: &[f64], plus: f64, what: &str| {
                assert_eq!(a.len(), r.len());
                for (k, (&u, &v)) in a.iter().zip(r).enumerate() {
                    assert!(
                        (u - plus - v).abs() <= 1e-12 * (1.0 + v.abs()),
                        "{what} [{k}] {u} vs {} at {:?}",
                        v + plus,
                        (n, i, o)
                    );
                }
            };
            close(&y, &ry, 0.0, "y");
            close(&gx, &rgx, 1.0, "grad x");
            close(&gw, &rgw, 1.0, "grad w");
            close(&gb, &rgb, 1.0, "grad b");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Shapes above the parallel threshold, narrow and wide, in f32 (where a different
        // summation order would show).
        for &(n, i, o) in &[(64usize, 20_000usize, 1usize), (64, 128, 300)] {
            let s = DenseShape {
                batch: n,
                inputs: i,
                outputs: o,
            };
            let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
            let (x, w, b, gy) = (
                f32s(values(n * i, 7)),
                f32s(values(o * i, 8)),
                f32s(values(o, 9)),
                f32s(values(n * o, 10)),
            );
            let run = || {
                let mut y = vec![0.0f32; n * o];
                dense_forward(&s, &x, &w, Some(&b), &mut y);
                let (mut gx, mut gw) = (vec![0.0f32; n * i], vec![0.0f32; o * i]);
                dense_backward_input(&s, &w, &gy, &mut gx);
                dense_backward_weights(&s, &x, &gy, &mut gw);
                (y, gx, gw)
            };
            let on = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool")
                    .install(run)
            };
            assert!(on(1) == on(3), "{:?}", (n, i, o));
        }
    }

    #[test]
    fn no_bias_means_zero_bias() {
        let s = DenseShape {
            batch: 4,
            inputs: 9,
            outputs: 2,
        };
        let (x, w) = (values(36, 5), values(18, 6));
        let (mut a, mut b) = (vec![0.0; 8], vec![0.0; 8]);
        dense_forward(&s, &x, &w, None, &mut a);
        dense_forward(&s, &x, &w, Some(&[0.0, 0.0]), &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| *v != 0.0));
    }
}
