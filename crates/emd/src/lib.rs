//! # mouton-emd: Earth Mover's and Wasserstein distances in pure Rust
//!
//! The optimal-transport toolbox of mouton, usable on its own (no deep-learning dependency):
//!
//! | function | what it computes | cost |
//! |---|---|---|
//! | [`delta_emd`], [`delta_emd_trace`] | EMD of two histograms on a line by the delta recurrence delta_{i+1} = delta_i + P_i - Q_i, W = sum \|delta_i\| | O(n) |
//! | [`wasserstein_1d`] | W_p between weighted samples on the real line, by quantile functions (scipy's `wasserstein_distance`, POT's `wasserstein_1d`) | O(n log n) |
//! | [`emd`], [`emd2`] | exact optimal transport plan / cost for any cost matrix (network simplex; POT's `ot.emd`, `ot.emd2`) | see [`emd`] |
//! | [`sinkhorn`] | entropic OT, log-domain stabilized (POT's `ot.sinkhorn`) | O(n m) per iteration |
//! | [`sliced_wasserstein_distance`] | sliced W_p between point clouds in R^d, e.g. batches of images | O(k (n d + n log n)) |
//!
//! Names follow POT's, which say the maths. Every function checks its input and returns an
//! [`EmdError`] instead of panicking.
//!
//! ```
//! use mouton_emd::{delta_emd, emd2, wasserstein_1d, EmdOptions, MassPolicy};
//! // The slides' example: P = [3,2,1,4], Q = [1,2,4,3] -> W = 5 ...
//! let (p, q) = ([3.0, 2.0, 1.0, 4.0], [1.0, 2.0, 4.0, 3.0]);
//! assert_eq!(delta_emd(&p, &q, None, MassPolicy::Strict)?, 5.0);
//! // ... the same as exact OT with cost |x_i - x_j| ...
//! let cost: Vec<f64> = (0..16).map(|k| ((k / 4) as f64 - (k % 4) as f64).abs()).collect();
//! assert_eq!(emd2(&p, &q, &cost, &EmdOptions::default())?, 5.0);
//! // ... and W_1 between the weighted samples at 0, 1, 2, 3 (per unit of mass: 10 units here).
//! let x = [0.0, 1.0, 2.0, 3.0];
//! let w1 = wasserstein_1d(&x, &x, Some(&p), Some(&q), 1.0)?;
//! assert!((10.0 * w1 - 5.0).abs() < 1e-12);
//! # Ok::<(), mouton_emd::EmdError>(())
//! ```

mod delta;
mod error;
mod exact;
mod sinkhorn;
mod sliced;
mod validate;
mod wasserstein_1d;

pub use delta::{delta_emd, delta_emd_trace, DeltaTrace};
pub use error::EmdError;
pub use exact::{emd, emd2, EmdOptions, OtPlan};
pub use sinkhorn::{sinkhorn, SinkhornMethod, SinkhornOptions, SinkhornPlan};
pub use sliced::{sliced_wasserstein_distance, SlicedOptions};
pub use validate::{MassPolicy, MASS_RTOL};
pub use wasserstein_1d::{wasserstein_1d, wasserstein_1d_pow};
