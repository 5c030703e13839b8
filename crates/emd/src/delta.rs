//! The slides' delta recurrence: Earth Mover's Distance between two histograms on a line.
//!
//! Moving earth along a line, the mass that must cross the gap after bin `i` is the running
//! difference of the two histograms: delta_0 = 0, delta_{i+1} = delta_i + P_i - Q_i. Each unit of
//! it travels the width of that gap, so W = sum_i |delta_{i+1}| (x_{i+1} - x_i), which is
//! sum_i |delta_i| on a unit grid. It is O(n) and allocation-free.

use crate::validate::{finite, mass_pair, same_len, MassPolicy};
use crate::EmdError;

/// The distance and the running mass difference after each bin.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaTrace {
    /// The Earth Mover's Distance W.
    pub distance: f64,
    /// `delta[i]` is the mass still to carry past bin `i` (delta_{i+1} in the slides' indexing);
    /// the last entry is 0 up to rounding, since both histograms carry the same mass.
    pub delta: Vec<f64>,
}

/// Earth Mover's Distance between histograms `p` and `q` by the delta recurrence.
///
/// Bins sit at unit spacing unless `positions` (strictly increasing, one per bin) is given.
///
/// ```
/// use mouton_emd::{delta_emd, MassPolicy};
/// let w = delta_emd(&[3.0, 2.0, 1.0, 4.0], &[1.0, 2.0, 4.0, 3.0], None, MassPolicy::Strict)?;
/// assert_eq!(w, 5.0);
/// // The first gap twice as wide: the 2 units crossing it travel twice as far, W = 2*2 + 2 + 1.
/// let x = [0.0, 2.0, 3.0, 4.0];
/// assert_eq!(delta_emd(&[3.0, 2.0, 1.0, 4.0], &[1.0, 2.0, 4.0, 3.0], Some(&x), MassPolicy::Strict)?, 7.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn delta_emd(
    p: &[f64],
    q: &[f64],
    positions: Option<&[f64]>,
    policy: MassPolicy,
) -> Result<f64, EmdError> {
    let (sp, sq) = check(p, q, positions, policy)?;
    let mut delta = 0.0;
    let mut w = 0.0;
    match positions {
        None => {
            // The last delta is the (zero up to rounding) total-mass difference, not a gap.
            for (&pi, &qi) in p[..p.len() - 1].iter().zip(q) {
                delta += pi * sp - qi * sq;
                w += delta.abs();
            }
        }
        Some(x) => {
            for i in 0..p.len() - 1 {
                delta += p[i] * sp - q[i] * sq;
                w += delta.abs() * (x[i + 1] - x[i]);
            }
        }
    }
    Ok(w)
}

/// Like [`delta_emd`], also returning delta after every bin.
///
/// ```
/// use mouton_emd::{delta_emd_trace, MassPolicy};
/// let t = delta_emd_trace(&[3.0, 2.0, 1.0, 4.0], &[1.0, 2.0, 4.0, 3.0], None, MassPolicy::Strict)?;
/// assert_eq!(t.delta, vec![2.0, 2.0, -1.0, 0.0]);
/// assert_eq!(t.distance, 5.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn delta_emd_trace(
    p: &[f64],
    q: &[f64],
    positions: Option<&[f64]>,
    policy: MassPolicy,
) -> Result<DeltaTrace, EmdError> {
    let (sp, sq) = check(p, q, positions, policy)?;
    let mut delta = Vec::with_capacity(p.len());
    let mut d = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        d += pi * sp - qi * sq;
        delta.push(d);
    }
    let n = delta.len();
    let distance = match positions {
        None => delta[..n - 1].iter().map(|d| d.abs()).sum(),
        Some(x) => (0..n - 1).map(|i| delta[i].abs() * (x[i + 1] - x[i])).sum(),
    };
    Ok(DeltaTrace { distance, delta })
}

fn check(
    p: &[f64],
    q: &[f64],
    positions: Option<&[f64]>,
    policy: MassPolicy,
) -> Result<(f64, f64), EmdError> {
    same_len("p", p.len(), "q", q.len())?;
    let scales = mass_pair("p", p, "q", q, policy)?;
    if let Some(x) = positions {
        same_len("positions", x.len(), "p", p.len())?;
        finite("positions", x)?;
        if let Some(i) = (1..x.len()).find(|&i| x[i] <= x[i - 1]) {
            return Err(EmdError::NotIncreasing {
                index: i,
                value: x[i],
            });
        }
    }
    Ok(scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_example_with_trace() {
        let t = delta_emd_trace(
            &[3., 2., 1., 4.],
            &[1., 2., 4., 3.],
            None,
            MassPolicy::Strict,
        )
        .unwrap();
        assert_eq!(t.delta, vec![2., 2., -1., 0.]);
        assert_eq!(t.distance, 5.0);
    }

    #[test]
    fn positions_scale_each_gap() {
        // All mass moves from x=0 to x=10 across two gaps of 3 and 7.
        let w = delta_emd(
            &[1., 0., 0.],
            &[0., 0., 1.],
            Some(&[0., 3., 10.]),
            MassPolicy::Strict,
        )
        .unwrap();
        assert_eq!(w, 10.0);
    }

    #[test]
    fn rejects_bad_input() {
        let s = MassPolicy::Strict;
        assert!(matches!(
            delta_emd(&[1., 1.], &[2.], None, s),
            Err(EmdError::LengthMismatch { .. })
        ));
        assert!(matches!(
            delta_emd(&[1., 1.], &[1., 2.], None, s),
            Err(EmdError::UnequalMass { .. })
        ));
        let w = delta_emd(&[1., 1.], &[1., 2.], None, MassPolicy::Normalize).unwrap();
        assert!((w - (0.5 - 1.0 / 3.0)).abs() < 1e-15);
        assert!(matches!(
            delta_emd(&[1., f64::NAN], &[1., 1.], None, s),
            Err(EmdError::NonFinite {
                name: "p",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            delta_emd(&[1., 1.], &[1., 1.], Some(&[0., 0.]), s),
            Err(EmdError::NotIncreasing { index: 1, .. })
        ));
        assert!(matches!(
            delta_emd(&[], &[], None, s),
            Err(EmdError::Empty { name: "p" })
        ));
        assert!(matches!(
            delta_emd(&[0.], &[0.], None, s),
            Err(EmdError::ZeroMass { name: "p" })
        ));
    }
}
