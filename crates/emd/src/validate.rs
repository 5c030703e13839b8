//! Input checks shared by every solver, so all of them report problems the same way.

use crate::EmdError;

/// Relative tolerance under which two total masses count as equal.
pub const MASS_RTOL: f64 = 1e-9;

/// What to do when the two distributions carry different total mass.
///
/// ```
/// use mouton_emd::{delta_emd, MassPolicy};
/// // 2 units against 4: refused as given, compared as shapes when normalized.
/// assert!(delta_emd(&[2.0, 0.0], &[0.0, 4.0], None, MassPolicy::Strict).is_err());
/// assert_eq!(delta_emd(&[2.0, 0.0], &[0.0, 4.0], None, MassPolicy::Normalize)?, 1.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MassPolicy {
    /// Refuse unequal totals (relative difference above [`MASS_RTOL`]) with
    /// [`EmdError::UnequalMass`]; equal totals are used as given.
    #[default]
    Strict,
    /// Divide each distribution by its own total first, so only the shapes are compared.
    Normalize,
}

pub(crate) fn non_empty(name: &'static str, xs: &[f64]) -> Result<(), EmdError> {
    if xs.is_empty() {
        return Err(EmdError::Empty { name });
    }
    Ok(())
}

pub(crate) fn same_len(
    left: &'static str,
    l: usize,
    right: &'static str,
    r: usize,
) -> Result<(), EmdError> {
    if l != r {
        return Err(EmdError::LengthMismatch {
            left,
            left_len: l,
            right,
            right_len: r,
        });
    }
    Ok(())
}

/// Every entry finite.
pub(crate) fn finite(name: &'static str, xs: &[f64]) -> Result<(), EmdError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(EmdError::NonFinite {
            name,
            index,
            value: xs[index],
        }),
        None => Ok(()),
    }
}

/// Every entry finite and >= 0, with a positive total; returns the total.
pub(crate) fn masses(name: &'static str, xs: &[f64]) -> Result<f64, EmdError> {
    non_empty(name, xs)?;
    finite(name, xs)?;
    if let Some(index) = xs.iter().position(|&x| x < 0.0) {
        return Err(EmdError::NegativeMass {
            name,
            index,
            value: xs[index],
        });
    }
    let total: f64 = xs.iter().sum();
    if total <= 0.0 {
        return Err(EmdError::ZeroMass { name });
    }
    if !total.is_finite() {
        return Err(EmdError::InvalidParameter {
            name,
            value: total,
            reason: "total mass overflows f64",
        });
    }
    Ok(total)
}

/// Checks both mass vectors and applies the policy; returns the scale factors to apply to each
/// (1.0 under `Strict`).
pub(crate) fn mass_pair(
    left: &'static str,
    a: &[f64],
    right: &'static str,
    b: &[f64],
    policy: MassPolicy,
) -> Result<(f64, f64), EmdError> {
    let ta = masses(left, a)?;
    let tb = masses(right, b)?;
    match policy {
        MassPolicy::Normalize => Ok((1.0 / ta, 1.0 / tb)),
        MassPolicy::Strict => {
            if (ta - tb).abs() > MASS_RTOL * ta.max(tb) {
                return Err(EmdError::UnequalMass {
                    left,
                    left_total: ta,
                    right,
                    right_total: tb,
                });
            }
            Ok((1.0, 1.0))
        }
    }
}

pub(crate) fn order(p: f64) -> Result<(), EmdError> {
    if !(p.is_finite() && p >= 1.0) {
        return Err(EmdError::InvalidParameter {
            name: "p",
            value: p,
            reason: "the order of a Wasserstein distance must be a finite number >= 1",
        });
    }
    Ok(())
}

/// A discrete transport problem checked and restricted to its support: zero-mass bins carry no
/// flow, so solvers work on the rows and columns of positive mass only.
pub(crate) struct Support<'c> {
    /// Original indices of the kept rows and columns.
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    /// Their masses, scaled by the mass policy.
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// The cost restricted to them, row-major (borrowed when nothing was dropped).
    pub cost: std::borrow::Cow<'c, [f64]>,
}

impl<'c> Support<'c> {
    /// Checks `a`, `b` and a row-major `a.len() x b.len()` cost, then restricts to the support.
    pub fn new(
        a: &[f64],
        b: &[f64],
        cost: &'c [f64],
        policy: MassPolicy,
    ) -> Result<Self, EmdError> {
        let (n, m) = (a.len(), b.len());
        let (sa, sb) = mass_pair("a", a, "b", b, policy)?;
        if n.checked_mul(m) != Some(cost.len()) {
            return Err(EmdError::CostShape {
                rows: n,
                cols: m,
                len: cost.len(),
            });
        }
        finite("cost", cost)?;
        let rows: Vec<usize> = (0..n).filter(|&i| a[i] > 0.0).collect();
        let cols: Vec<usize> = (0..m).filter(|&j| b[j] > 0.0).collect();
        let cost = if rows.len() == n && cols.len() == m {
            std::borrow::Cow::Borrowed(cost)
        } else {
            std::borrow::Cow::Owned(
                rows.iter()
                    .flat_map(|&i| cols.iter().map(move |&j| cost[i * m + j]))
                    .collect(),
            )
        };
        Ok(Support {
            a: rows.iter().map(|&i| a[i] * sa).collect(),
            b: cols.iter().map(|&j| b[j] * sb).collect(),
            rows,
            cols,
            cost,
        })
    }
}
