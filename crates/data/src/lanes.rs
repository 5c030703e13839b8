//! Eight `f32` lanes: the handful of vector operations the rasterizer needs, written once
//! against the [`Simd`] / [`Lanes`] traits and run either on AVX2 registers (x86-64 CPUs that
//! have it, detected at run time) or on plain arrays (everywhere else; the compiler vectorizes
//! them for the baseline target).
//!
//! Why not leave it all to the auto-vectorizer: it did vectorize the rasterizer's sweep, but any
//! small change to the loop (an extra store, a flag) silently turned it back into branchy
//! scalar code 1.5x slower. Written against lanes, the shape is fixed.
//!
//! Both implementations do the same IEEE operations in the same order (no fused multiply-add;
//! `min`/`max` are `a < b ? a : b` / `a > b ? a : b` as SSE's are), so they give the same bits.
//!
//! Soundness: an AVX2 vector can only be made through an [`Avx2`] token, and a token only exists
//! once `is_x86_feature_detected!("avx2")` said yes, so no AVX2 instruction runs on a CPU
//! without it.

use std::ops::{Add, BitAnd, BitOr, Mul, Sub};

/// An instruction set: makes vectors of eight lanes.
pub(crate) trait Simd: Copy {
    /// Its vector type.
    type V: Lanes;
    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Lane k: `(first + k) as f32`.
    fn count_from(self, first: i32) -> Self::V;
    /// The eight values of `a`.
    fn load(self, a: &[f32; 8]) -> Self::V;
    /// The eight bytes of `a`, as floats.
    fn load_u8(self, a: &[u8; 8]) -> Self::V;
}

/// Eight `f32` lanes.
pub(crate) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    /// A per-lane condition.
    type Mask: Mask;
    /// Writes the lanes to `a`.
    fn store(self, a: &mut [f32; 8]);
    /// Writes the lanes, truncated, to `a`; each must be in 0..256.
    fn store_u8(self, a: &mut [u8; 8]);
    /// The smallest lane: lanes k and k + 4 compared first, then k and k + 2, then 0 and 1,
    /// each with [`Self::min`].
    fn reduce_min(self) -> f32;
    /// The largest lane, paired as [`Self::reduce_min`] does.
    fn reduce_max(self) -> f32;
    /// Per lane, rounded toward zero to an integer; lanes must lie within the `i32` range
    /// (it goes through integers, which every SIMD instruction set converts to quickly).
    fn trunc(self) -> Self;
    /// Per lane `self < b ? self : b`.
    fn min(self, b: Self) -> Self;
    /// Per lane `self > b ? self : b`.
    fn max(self, b: Self) -> Self;
    /// Per lane `|self|` (the sign bit cleared).
    fn abs(self) -> Self;
    /// Per lane `self < b`.
    fn lt(self, b: Self) -> Self::Mask;
    /// Per lane `self <= b`.
    fn le(self, b: Self) -> Self::Mask;
    /// Per lane `m ? a : b`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
}

/// A per-lane condition.
pub(crate) trait Mask: Copy + BitAnd<Output = Self> + BitOr<Output = Self> {
    /// Bit k set when lane k holds.
    fn bits(self) -> u32;
    /// Per lane `self && !b`.
    fn and_not(self, b: Self) -> Self;
}

/// Plain arrays: any CPU.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Portable;

/// Eight lanes in an array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct P8([f32; 8]);

/// Eight conditions, each all ones or all zeros (so that selecting is bit arithmetic, which
/// the compiler vectorizes, instead of branches).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PMask([u32; 8]);

impl P8 {
    #[inline(always)]
    fn map2(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        P8(std::array::from_fn(|k| f(self.0[k], b.0[k])))
    }

    #[inline(always)]
    fn test(self, b: Self, f: impl Fn(f32, f32) -> bool) -> PMask {
        PMask(std::array::from_fn(|k| {
            if f(self.0[k], b.0[k]) {
                u32::MAX
            } else {
                0
            }
        }))
    }
}

impl PMask {
    #[inline(always)]
    fn map2(self, b: Self, f: impl Fn(u32, u32) -> u32) -> Self {
        PMask(std::array::from_fn(|k| f(self.0[k], b.0[k])))
    }
}

impl Simd for Portable {
    type V = P8;
    #[inline(always)]
    fn splat(self, x: f32) -> P8 {
        P8([x; 8])
    }
    #[inline(always)]
    fn count_from(self, first: i32) -> P8 {
        P8(std::array::from_fn(|k| (first + k as i32) as f32))
    }
    #[inline(always)]
    fn load(self, a: &[f32; 8]) -> P8 {
        P8(*a)
    }
    #[inline(always)]
    fn load_u8(self, a: &[u8; 8]) -> P8 {
        P8(a.map(f32::from))
    }
}

/// `a < b ? a : b`, as SSE's `minps`: one instruction, where `f32::min`'s NaN handling costs
/// three in the hottest loops (and its zero-sign rules differ).
#[inline(always)]
pub(crate) fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// `a > b ? a : b`, as SSE's `maxps`.
#[inline(always)]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Lanes reduced with `f` in [`Lanes::reduce_min`]'s pairing.
#[inline(always)]
fn reduce(a: [f32; 8], f: impl Fn(f32, f32) -> f32) -> f32 {
    let q: [f32; 4] = std::array::from_fn(|k| f(a[k], a[k + 4]));
    f(f(q[0], q[2]), f(q[1], q[3]))
}

impl Add for P8 {
    type Output = P8;
    #[inline(always)]
    fn add(self, b: P8) -> P8 {
        self.map2(b, |x, y| x + y)
    }
}

impl Sub for P8 {
    type Output = P8;
    #[inline(always)]
    fn sub(self, b: P8) -> P8 {
        self.map2(b, |x, y| x - y)
    }
}

impl Mul for P8 {
    type Output = P8;
    #[inline(always)]
    fn mul(self, b: P8) -> P8 {
        self.map2(b, |x, y| x * y)
    }
}

impl Lanes for P8 {
    type Mask = PMask;
    #[inline(always)]
    fn store(self, a: &mut [f32; 8]) {
        *a = self.0;
    }
    #[inline(always)]
    fn store_u8(self, a: &mut [u8; 8]) {
        *a = self.0.map(|x| x as u8);
    }
    #[inline(always)]
    fn reduce_min(self) -> f32 {
        reduce(self.0, fmin)
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        reduce(self.0, fmax)
    }
    #[inline(always)]
    fn trunc(self) -> P8 {
        P8(self.0.map(|x| x as i32 as f32))
    }
    #[inline(always)]
    fn min(self, b: P8) -> P8 {
        self.map2(b, fmin)
    }
    #[inline(always)]
    fn max(self, b: P8) -> P8 {
        self.map2(b, fmax)
    }
    #[inline(always)]
    fn abs(self) -> P8 {
        P8(self.0.map(f32::abs))
    }
    #[inline(always)]
    fn lt(self, b: P8) -> PMask {
        self.test(b, |x, y| x < y)
    }
    #[inline(always)]
    fn le(self, b: P8) -> PMask {
        self.test(b, |x, y| x <= y)
    }
    #[inline(always)]
    fn select(m: PMask, a: P8, b: P8) -> P8 {
        P8(std::array::from_fn(|k| {
            f32::from_bits((a.0[k].to_bits() & m.0[k]) | (b.0[k].to_bits() & !m.0[k]))
        }))
    }
}

impl BitAnd for PMask {
    type Output = PMask;
    #[inline(always)]
    fn bitand(self, b: PMask) -> PMask {
        self.map2(b, |x, y| x & y)
    }
}

impl BitOr for PMask {
    type Output = PMask;
    #[inline(always)]
    fn bitor(self, b: PMask) -> PMask {
        self.map2(b, |x, y| x | y)
    }
}

impl Mask for PMask {
    #[inline(always)]
    fn bits(self) -> u32 {
        let mut bits = 0;
        for (k, &m) in self.0.iter().enumerate() {
            bits |= (m & 1) << k;
        }
        bits
    }
    #[inline(always)]
    fn and_not(self, b: PMask) -> PMask {
        self.map2(b, |x, y| x & !y)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Lanes, Mask, Simd};
    use std::arch::x86_64::*;
    use std::ops::{Add, BitAnd, BitOr, Mul, Sub};

    /// Proof that this CPU has AVX2: the only way to make [`A8`] vectors.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        /// The token, if the CPU has AVX2.
        pub(crate) fn detect() -> Option<Avx2> {
            std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
        }
    }

    /// Eight lanes in an AVX register. Every value of this type was made through an [`Avx2`]
    /// token, so the methods below only run where AVX2 exists: that is the safety argument
    /// of each `unsafe` block in this module.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct A8(__m256);

    /// A comparison result: each lane all ones or all zeros.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct AMask(__m256);

    impl Simd for Avx2 {
        type V = A8;
        #[inline(always)]
        fn splat(self, x: f32) -> A8 {
            // SAFETY: the token proves AVX2 (see the module doc).
            unsafe { A8(_mm256_set1_ps(x)) }
        }
        #[inline(always)]
        fn count_from(self, first: i32) -> A8 {
            // SAFETY: as above.
            unsafe {
                let k = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                A8(_mm256_cvtepi32_ps(_mm256_add_epi32(
                    _mm256_set1_epi32(first),
                    k,
                )))
            }
        }
        #[inline(always)]
        fn load(self, a: &[f32; 8]) -> A8 {
            // SAFETY: as above; `a` is eight readable floats.
            unsafe { A8(_mm256_loadu_ps(a.as_ptr())) }
        }
        #[inline(always)]
        fn load_u8(self, a: &[u8; 8]) -> A8 {
            // SAFETY: as above; `a` is eight readable bytes (loadl reads exactly eight).
            unsafe {
                let b = _mm_loadl_epi64(a.as_ptr().cast());
                A8(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)))
            }
        }
    }

    impl Add for A8 {
        type Output = A8;
        #[inline(always)]
        fn add(self, b: A8) -> A8 {
            // SAFETY: an A8 exists only where AVX2 does.
            unsafe { A8(_mm256_add_ps(self.0, b.0)) }
        }
    }

    impl Sub for A8 {
        type Output = A8;
        #[inline(always)]
        fn sub(self, b: A8) -> A8 {
            // SAFETY: as above.
            unsafe { A8(_mm256_sub_ps(self.0, b.0)) }
        }
    }

    impl Mul for A8 {
        type Output = A8;
        #[inline(always)]
        fn mul(self, b: A8) -> A8 {
            // SAFETY: as above.
            unsafe { A8(_mm256_mul_ps(self.0, b.0)) }
        }
    }

    impl Lanes for A8 {
        type Mask = AMask;
        #[inline(always)]
        fn store(self, a: &mut [f32; 8]) {
            // SAFETY: as above; `a` is eight writable floats.
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn store_u8(self, a: &mut [u8; 8]) {
            // SAFETY: as above; `a` is eight writable bytes (storel writes exactly eight).
            // Lanes in 0..256 survive both saturating packs unchanged.
            unsafe {
                let i = _mm256_cvttps_epi32(self.0);
                let w =
                    _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
                _mm_storel_epi64(a.as_mut_ptr().cast(), _mm_packus_epi16(w, w));
            }
        }
        #[inline(always)]
        fn reduce_min(self) -> f32 {
            // SAFETY: as above.
            unsafe {
                let q = _mm_min_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps::<1>(self.0),
                );
                let d = _mm_min_ps(q, _mm_movehl_ps(q, q));
                _mm_cvtss_f32(_mm_min_ss(d, _mm_shuffle_ps::<1>(d, d)))
            }
        }
        #[inline(always)]
        fn reduce_max(self) -> f32 {
            // SAFETY: as above.
            unsafe {
                let q = _mm_max_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps::<1>(self.0),
                );
                let d = _mm_max_ps(q, _mm_movehl_ps(q, q));
                _mm_cvtss_f32(_mm_max_ss(d, _mm_shuffle_ps::<1>(d, d)))
            }
        }
        #[inline(always)]
        fn trunc(self) -> A8 {
            // SAFETY: as above.
            unsafe { A8(_mm256_cvtepi32_ps(_mm256_cvttps_epi32(self.0))) }
        }
        #[inline(always)]
        fn min(self, b: A8) -> A8 {
            // SAFETY: as above. (minps returns its second operand unless the first is smaller.)
            unsafe { A8(_mm256_min_ps(self.0, b.0)) }
        }
        #[inline(always)]
        fn max(self, b: A8) -> A8 {
            // SAFETY: as above.
            unsafe { A8(_mm256_max_ps(self.0, b.0)) }
        }
        #[inline(always)]
        fn abs(self) -> A8 {
            // SAFETY: as above.
            unsafe {
                let bits = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
                A8(_mm256_and_ps(self.0, bits))
            }
        }
        #[inline(always)]
        fn lt(self, b: A8) -> AMask {
            // SAFETY: as above.
            unsafe { AMask(_mm256_cmp_ps::<_CMP_LT_OQ>(self.0, b.0)) }
        }
        #[inline(always)]
        fn le(self, b: A8) -> AMask {
            // SAFETY: as above.
            unsafe { AMask(_mm256_cmp_ps::<_CMP_LE_OQ>(self.0, b.0)) }
        }
        #[inline(always)]
        fn select(m: AMask, a: A8, b: A8) -> A8 {
            // SAFETY: as above. (blendv takes its second operand where the mask is set.)
            unsafe { A8(_mm256_blendv_ps(b.0, a.0, m.0)) }
        }
    }

    impl BitAnd for AMask {
        type Output = AMask;
        #[inline(always)]
        fn bitand(self, b: AMask) -> AMask {
            // SAFETY: an AMask comes from an A8 comparison, so AVX2 exists.
            unsafe { AMask(_mm256_and_ps(self.0, b.0)) }
        }
    }

    impl BitOr for AMask {
        type Output = AMask;
        #[inline(always)]
        fn bitor(self, b: AMask) -> AMask {
            // SAFETY: as above.
            unsafe { AMask(_mm256_or_ps(self.0, b.0)) }
        }
    }

    impl Mask for AMask {
        #[inline(always)]
        fn bits(self) -> u32 {
            // SAFETY: as above.
            unsafe { _mm256_movemask_ps(self.0) as u32 }
        }
        #[inline(always)]
        fn and_not(self, b: AMask) -> AMask {
            // SAFETY: as above. (andnot negates its first operand.)
            unsafe { AMask(_mm256_andnot_ps(b.0, self.0)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the same lane arithmetic on `simd`, returning every intermediate's bits.
    fn exercise<S: Simd>(simd: S, a: &[f32; 8], b: &[f32; 8]) -> Vec<u32> {
        let (x, y) = (simd.load(a), simd.load(b));
        let m = x.lt(y) | (y.le(x) & x.abs().lt(simd.splat(3.0)));
        let v = [
            x + y,
            x - y,
            x * y,
            x.min(y),
            y.min(x),
            x.max(y),
            y.max(x),
            x.abs(),
            S::V::select(m, x, y),
            simd.count_from(-3),
            (x.min(simd.splat(1e9)).max(simd.splat(-1e9)) * simd.splat(0.7)).trunc(),
        ];
        let mut out = vec![
            m.bits(),
            x.le(y).bits(),
            x.lt(y).and_not(m).bits(),
            m.and_not(x.lt(y)).bits(),
        ];
        out.extend(
            [
                x.reduce_min(),
                x.reduce_max(),
                y.reduce_min(),
                y.reduce_max(),
            ]
            .map(f32::to_bits),
        );
        let mut bytes = [0; 8];
        (x.abs().min(simd.splat(255.5)) + simd.splat(0.25)).store_u8(&mut bytes);
        out.extend(bytes.map(u32::from));
        let mut round_trip = [0; 8];
        simd.load_u8(&bytes).store_u8(&mut round_trip);
        out.extend(round_trip.map(u32::from));
        for v in v {
            let mut arr = [0.0; 8];
            v.store(&mut arr);
            out.extend(arr.map(f32::to_bits));
        }
        out
    }

    #[test]
    fn portable_lanes_compute_what_they_say() {
        let a = [1.0, -2.0, 0.0, -0.0, 5.5, f32::INFINITY, -7.0, 3.0];
        let b = [2.0, -2.0, -0.0, 0.0, -1.0, 1.0, f32::NEG_INFINITY, 3.5];
        let out = exercise(Portable, &a, &b);
        // a < b at lanes 0, 7; else b <= a and |a| < 3 at lanes 1, 2, 3.
        assert_eq!(out[0], 0b1000_1111);
        assert_eq!(out[1], 0b1000_1111); // a <= b
        assert_eq!((out[2], out[3]), (0, 0b1110));
        let f = |i: usize| f32::from_bits(out[i]);
        assert_eq!(
            [f(4), f(5), f(6), f(7)],
            [-7.0, f32::INFINITY, f32::NEG_INFINITY, 3.5]
        );
        assert_eq!(out[8..16], [1, 2, 0, 0, 5, 255, 7, 3]);
        assert_eq!(out[8..16], out[16..24]);
        let lane = |v: usize, k: usize| f(24 + 8 * v + k);
        assert_eq!(lane(0, 4), 4.5);
        assert_eq!(lane(1, 0), -1.0);
        assert_eq!(lane(2, 4), -5.5);
        // min/max keep the second operand on ties: the sign of zero shows it.
        assert!(lane(3, 2).is_sign_negative() && lane(4, 2).is_sign_positive());
        assert!(lane(5, 3).is_sign_positive() && lane(6, 3).is_sign_negative());
        assert_eq!(lane(7, 6), 7.0);
        assert_eq!(lane(8, 4), -1.0);
        assert_eq!(lane(8, 0), 1.0);
        assert_eq!((lane(9, 0), lane(9, 7)), (-3.0, 4.0));
        // trunc(0.7 a), a clamped to +-1e9: 0.7, -1.4, 3.85, 7e8, -4.9
        let t = [0, 1, 4, 5, 6].map(|k| lane(10, k));
        assert_eq!(t, [0.0, -1.0, 3.0, 7e8, -4.0]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_lanes_give_the_portable_bits() {
        let Some(avx2) = Avx2::detect() else {
            println!("SKIPPED: this CPU has no AVX2");
            return;
        };
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            2.75,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
        ];
        for r in 0..8 {
            let a: [f32; 8] = std::array::from_fn(|k| values[(k + r) % 8] * (r as f32 - 3.5));
            let b: [f32; 8] = std::array::from_fn(|k| values[(3 * k + r) % 8]);
            assert_eq!(
                exercise(Portable, &a, &b),
                exercise(avx2, &a, &b),
                "round {r}"
            );
        }
    }
}
