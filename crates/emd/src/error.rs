//! The one error type of the crate: every input problem is reported, never panicked on.

/// What can go wrong when computing a transport distance.
///
/// Every variant names the argument at fault (`"p"`, `"u_weights"`, `"cost"`, ...) and, where
/// there is one, the index of the first bad entry.
///
/// ```
/// use mouton_emd::{delta_emd, EmdError, MassPolicy};
/// let err = delta_emd(&[1.0, -2.0], &[0.5, 0.5], None, MassPolicy::Strict).unwrap_err();
/// assert!(matches!(err, EmdError::NegativeMass { name: "p", index: 1, .. }));
/// assert_eq!(err.to_string(), "p[1] = -2 is negative: masses must be >= 0");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmdError {
    /// An input that must hold at least one entry (or positive mass) is empty.
    #[error("{name} is empty")]
    Empty {
        /// The argument's name.
        name: &'static str,
    },
    /// Two inputs that must have the same length do not.
    #[error("length mismatch: {left} has {left_len} entries but {right} has {right_len}")]
    LengthMismatch {
        /// The first argument's name.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// The second argument's name.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
    /// A mass or weight is negative.
    #[error("{name}[{index}] = {value} is negative: masses must be >= 0")]
    NegativeMass {
        /// The argument's name.
        name: &'static str,
        /// Index of the first negative entry.
        index: usize,
        /// The entry.
        value: f64,
    },
    /// A value, mass or cost is NaN or infinite.
    #[error("{name}[{index}] = {value} is not finite")]
    NonFinite {
        /// The argument's name.
        name: &'static str,
        /// Index of the first bad entry.
        index: usize,
        /// The entry.
        value: f64,
    },
    /// All the mass of a distribution is zero.
    #[error("{name} has zero total mass")]
    ZeroMass {
        /// The argument's name.
        name: &'static str,
    },
    /// The two distributions do not carry the same total mass, and normalization was not asked for.
    #[error(
        "unequal total mass: {left} sums to {left_total} but {right} sums to {right_total} \
         (ask for MassPolicy::Normalize to compare shapes only)"
    )]
    UnequalMass {
        /// The first argument's name.
        left: &'static str,
        /// Its total mass.
        left_total: f64,
        /// The second argument's name.
        right: &'static str,
        /// Its total mass.
        right_total: f64,
    },
    /// A cost matrix does not have `rows * cols` entries.
    #[error("cost matrix has {len} entries, expected {rows} x {cols} = {}", rows * cols)]
    CostShape {
        /// Rows expected (length of `a`).
        rows: usize,
        /// Columns expected (length of `b`).
        cols: usize,
        /// Entries given.
        len: usize,
    },
    /// Bin positions are not strictly increasing.
    #[error("positions must be strictly increasing, but positions[{index}] = {value} <= positions[{}]", index - 1)]
    NotIncreasing {
        /// Index of the first entry not above its predecessor.
        index: usize,
        /// The entry.
        value: f64,
    },
    /// A parameter is outside its domain (order p < 1, epsilon <= 0, zero projections, ...).
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is required of it.
        reason: &'static str,
    },
    /// An iterative solver stopped at its iteration cap before meeting its tolerance.
    #[error("{solver} did not converge in {iterations} iterations (residual {residual:e})")]
    NotConverged {
        /// Which solver.
        solver: &'static str,
        /// Iterations performed.
        iterations: usize,
        /// The last measured residual.
        residual: f64,
    },
}
