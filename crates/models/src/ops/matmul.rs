//! A safe wrapper over the `gemm` crate for the row-major products the kernels need.

use gemm::Parallelism;

/// The float types the kernels run on.
pub trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::ops::Sub<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// From an f64 constant.
    fn of(v: f64) -> Self;
    /// As an f64.
    fn as_f64(self) -> f64;
    /// e^self.
    fn exp(self) -> Self;
    /// tanh(self).
    fn tanh(self) -> Self;
    /// 1 / self.
    fn recip(self) -> Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn as_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn recip(self) -> Self {
                <$t>::recip(self)
            }
        }
    };
}
real!(f32);
real!(f64);

/// A strided matrix view: `rows x cols` of the logical matrix, element (i, j) at
/// `data[i rs + j cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a stored `rows x cols` row-major matrix.
    pub fn t(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: cols,
        }
    }
    /// The transpose of the `rows x cols` block starting at `data[0]` of a row-major matrix
    /// whose rows are `ld` apart.
    pub fn t_block(data: &'a [T], rows: usize, cols: usize, ld: usize) -> Self {
        Mat {
            data,
            rows: cols,
            cols: rows,
            rs: 1,
            cs: ld,
        }
    }
    /// One past the largest index the view reads (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `c = a b` (or `c += a b` with `accumulate`), c row-major `a.rows x b.cols`, single-threaded
/// (callers parallelize over images, which keeps the sums' order fixed).
pub(crate) fn matmul<T: Real>(a: Mat<T>, b: Mat<T>, c: &mut [T], accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert!(a.data.len() >= a.extent() && b.data.len() >= b.extent());
    assert_eq!(c.len(), a.rows * b.cols, "output size");
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            c.iter_mut().for_each(|v| *v = T::ZERO);
        }
        return;
    }
    let (a_rs, a_cs) = (a.rs as isize, a.cs as isize);
    let (b_rs, b_cs) = (b.rs as isize, b.cs as isize);
    // SAFETY: every index gemm touches lies inside the slices, whose sizes are checked above
    // against the shapes and strides passed.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            c.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Partial sums kept by [`sum_lanes`] and [`dot`]: independent additions the compiler
/// vectorizes, where a single running sum is one dependent addition per element.
const LANES: usize = 16;

/// The sum of `v`, in a fixed order (so the same for any thread count).
pub(crate) fn sum_lanes<T: Real>(v: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail = chunks.remainder().iter().fold(T::ZERO, |s, &x| s + x);
    acc.iter().fold(tail, |s, &a| s + a)
}

/// `a . b`, in a fixed order (see [`sum_lanes`]).
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(T::ZERO, |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_transposes() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut c = [0.0; 4];
        matmul(Mat::new(&a, 2, 3), Mat::new(&b, 3, 2), &mut c, false);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // a^T a (3x3) from the stored 2x3 a
        let mut d = [0.0; 9];
        matmul(Mat::t(&a, 2, 3), Mat::new(&a, 2, 3), &mut d, false);
        assert_eq!(d, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
        matmul(Mat::new(&a, 2, 3), Mat::new(&b, 3, 2), &mut c, true);
        assert_eq!(c, [8.0, 10.0, 20.0, 22.0]);
        // the transpose of a's right 2x2 block, [[2, 5], [3, 6]], times [[1], [1]]
        let mut e = [0.0; 2];
        matmul(
            Mat::t_block(&a[1..], 2, 2, 3),
            Mat::new(&[1.0, 1.0], 2, 1),
            &mut e,
            false,
        );
        assert_eq!(e, [7.0, 9.0]);
    }
}
