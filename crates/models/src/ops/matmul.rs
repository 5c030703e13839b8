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

/// A row-major matrix view, possibly transposed: `rows x cols` of the logical matrix.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    /// The logical matrix is the transpose of the stored `cols x rows` row-major one.
    pub transposed: bool,
}

impl<'a, T> Mat<'a, T> {
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: false,
        }
    }
    /// The transpose of a stored `rows x cols` row-major matrix.
    pub fn t(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows: cols,
            cols: rows,
            transposed: true,
        }
    }
    fn strides(&self) -> (isize, isize) {
        // (row stride, column stride) of the logical matrix
        if self.transposed {
            (1, self.rows as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// `c = a b` (or `c += a b` with `accumulate`), c row-major `a.rows x b.cols`, single-threaded
/// (callers parallelize over images, which keeps the sums' order fixed).
pub(crate) fn matmul<T: Real>(a: Mat<T>, b: Mat<T>, c: &mut [T], accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols);
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
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
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
    }
}
