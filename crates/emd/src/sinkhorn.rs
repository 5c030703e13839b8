//! Entropic optimal transport (Cuturi 2013), computed stably in the log domain.
//!
//! The entropic plan is P_ij = exp((f_i + g_j - C_ij) / epsilon) for dual potentials f, g that
//! make its marginals a and b. Two ways to iterate them:
//! - [`SinkhornMethod::Log`]: every half-step is an exact log-sum-exp over a row or column, so no
//!   quantity ever under- or overflows, for any epsilon (n m exponentials per half-step).
//! - [`SinkhornMethod::Stabilized`] (default): Schmitzer's absorption scheme, POT's
//!   `sinkhorn_stabilized`. Scaling vectors u, v run against the kernel
//!   K_ij = exp((f_i + g_j - C_ij) / epsilon) with plain matrix-vector products, and are absorbed
//!   into f, g (K recomputed) as soon as they leave [1e-`tau`, 1e`tau`]. Where a kernel row or
//!   column underflows to zero, it takes a log-domain half-step instead, so it is as robust as
//!   `Log` and as fast as the plain scaling loop.
//!
//! Convergence is measured after each column update, when the column marginals are exact: the L1
//! error of the row marginals, sum_i |(P 1)_i - a_i|, must fall below `tol`.

use rayon::prelude::*;

use crate::validate::{MassPolicy, Support};
use crate::EmdError;

/// How the Sinkhorn iterations are computed; both give the same plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkhornMethod {
    /// Scaling with absorption into log-domain potentials (fast, stable).
    #[default]
    Stabilized,
    /// Pure log-domain log-sum-exp updates (slower, stable for any epsilon).
    Log,
}

/// Settings of [`sinkhorn`].
///
/// ```
/// use mouton_emd::{sinkhorn, SinkhornMethod, SinkhornOptions};
/// let opts = SinkhornOptions { epsilon: 0.05, method: SinkhornMethod::Log, ..Default::default() };
/// let res = sinkhorn(&[0.5, 0.5], &[0.5, 0.5], &[0.0, 1.0, 1.0, 0.0], &opts)?;
/// assert!(res.converged && res.cost < 1e-8);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkhornOptions {
    /// Entropic regularization epsilon > 0, in the units of the cost.
    pub epsilon: f64,
    /// Iteration cap (one iteration updates both potentials).
    pub max_iter: usize,
    /// L1 marginal error at which to stop.
    pub tol: f64,
    /// Iterations between convergence checks (the `Log` method checks every iteration for free).
    pub check_every: usize,
    /// Iteration scheme.
    pub method: SinkhornMethod,
    /// What to do when `a` and `b` have different totals.
    pub mass: MassPolicy,
}

impl Default for SinkhornOptions {
    /// epsilon 0.1, 1000 iterations, tolerance 1e-9, checked every 10 (POT's defaults).
    fn default() -> Self {
        SinkhornOptions {
            epsilon: 0.1,
            max_iter: 1000,
            tol: 1e-9,
            check_every: 10,
            method: SinkhornMethod::Stabilized,
            mass: MassPolicy::Strict,
        }
    }
}

/// The entropic plan and what the solver saw.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkhornPlan {
    /// Transport cost of the entropic plan, sum_ij P_ij C_ij (POT's `sinkhorn2`; no entropy term).
    pub cost: f64,
    /// The plan, row-major `rows x cols`.
    pub plan: Vec<f64>,
    /// Rows (length of `a`).
    pub rows: usize,
    /// Columns (length of `b`).
    pub cols: usize,
    /// Dual potential of `a` (-inf on zero-mass bins).
    pub f: Vec<f64>,
    /// Dual potential of `b` (-inf on zero-mass bins).
    pub g: Vec<f64>,
    /// Whether the marginal error fell below `tol`.
    pub converged: bool,
    /// Iterations performed.
    pub iterations: usize,
    /// L1 error of the returned plan's row marginals, sum_i |(P 1)_i - a_i| (its column
    /// marginals are exact up to rounding); infinite if no iteration measured it.
    pub marginal_error: f64,
}

impl SinkhornPlan {
    /// Turns a run that hit its iteration cap into [`EmdError::NotConverged`].
    ///
    /// ```
    /// use mouton_emd::{sinkhorn, SinkhornOptions};
    /// let opts = SinkhornOptions { epsilon: 1e-3, max_iter: 2, ..Default::default() };
    /// let res = sinkhorn(&[0.5, 0.5], &[0.2, 0.8], &[0.0, 1.0, 1.0, 0.0], &opts)?;
    /// assert!(res.require_converged().is_err());
    /// # Ok::<(), mouton_emd::EmdError>(())
    /// ```
    pub fn require_converged(self) -> Result<Self, EmdError> {
        if self.converged {
            Ok(self)
        } else {
            Err(EmdError::NotConverged {
                solver: "sinkhorn",
                iterations: self.iterations,
                residual: self.marginal_error,
            })
        }
    }
}

/// Entropic optimal transport between histograms `a` and `b` for a row-major cost matrix.
///
/// As epsilon shrinks the cost approaches the exact [`emd2`](crate::emd2) cost.
///
/// ```
/// use mouton_emd::{emd2, sinkhorn, EmdOptions, SinkhornOptions};
/// let (a, b) = ([0.5, 0.5], [0.5, 0.5]);
/// let cost = [1.0, 2.0, 0.0, 1.0];
/// let opts = SinkhornOptions { epsilon: 0.01, ..Default::default() };
/// let res = sinkhorn(&a, &b, &cost, &opts)?.require_converged()?;
/// let exact = emd2(&a, &b, &cost, &EmdOptions::default())?;
/// assert!((res.cost - exact).abs() < 1e-6);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn sinkhorn(
    a: &[f64],
    b: &[f64],
    cost: &[f64],
    opts: &SinkhornOptions,
) -> Result<SinkhornPlan, EmdError> {
    let (n, m) = (a.len(), b.len());
    let sup = Support::new(a, b, cost, opts.mass)?;
    if !(opts.epsilon.is_finite() && opts.epsilon > 0.0) {
        return Err(EmdError::InvalidParameter {
            name: "epsilon",
            value: opts.epsilon,
            reason: "must be finite and > 0",
        });
    }
    if !(opts.tol.is_finite() && opts.tol >= 0.0) {
        return Err(EmdError::InvalidParameter {
            name: "tol",
            value: opts.tol,
            reason: "must be finite and >= 0",
        });
    }

    // Zero-mass bins have potential -inf and no flow.
    let (rows, cols, c) = (&sup.rows, &sup.cols, &sup.cost[..]);
    let (nn, mm) = (rows.len(), cols.len());
    let mut st = State::new(&sup.a, &sup.b, c, opts.epsilon);
    let check_every = opts.check_every.max(1);
    let (converged, iterations, err) = match opts.method {
        SinkhornMethod::Log => st.run_log(opts.max_iter, opts.tol),
        SinkhornMethod::Stabilized => st.run_stabilized(opts.max_iter, opts.tol, check_every),
    };

    let eps = opts.epsilon;
    let mut plan = vec![0.0; n * m];
    let mut total = 0.0;
    for (k, &i) in rows.iter().enumerate() {
        for (l, &j) in cols.iter().enumerate() {
            let cij = c[k * mm + l];
            let p = ((st.f[k] + st.g[l] - cij) / eps).exp();
            plan[i * m + j] = p;
            total += p * cij;
        }
    }
    let mut f = vec![f64::NEG_INFINITY; n];
    let mut g = vec![f64::NEG_INFINITY; m];
    for (k, &i) in rows.iter().enumerate() {
        f[i] = st.f[k];
    }
    for (l, &j) in cols.iter().enumerate() {
        g[j] = st.g[l];
    }
    debug_assert_eq!(nn * mm, c.len());
    Ok(SinkhornPlan {
        cost: total,
        plan,
        rows: n,
        cols: m,
        f,
        g,
        converged,
        iterations,
        marginal_error: err,
    })
}

/// Above this many cost entries, exponentials and log-sum-exps run on all cores.
const PAR_MIN: usize = 1 << 14;
/// Absorb scalings once |log u| or |log v| exceeds this (u, v within 1e+-100 or so).
const ABSORB_AT: f64 = 230.0;

struct State<'a> {
    a: &'a [f64],
    b: &'a [f64],
    c: &'a [f64],
    ct: Vec<f64>,
    eps: f64,
    f: Vec<f64>,
    g: Vec<f64>,
    log_a: Vec<f64>,
    log_b: Vec<f64>,
}

impl<'a> State<'a> {
    fn new(a: &'a [f64], b: &'a [f64], c: &'a [f64], eps: f64) -> Self {
        let (n, m) = (a.len(), b.len());
        let mut ct = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                ct[j * n + i] = c[i * m + j];
            }
        }
        State {
            a,
            b,
            c,
            ct,
            eps,
            f: vec![0.0; n],
            g: vec![0.0; m],
            log_a: a.iter().map(|x| x.ln()).collect(),
            log_b: b.iter().map(|x| x.ln()).collect(),
        }
    }

    /// out_k = LSE_l((pot_l - mat[k, l]) / eps) for a row-major `out.len() x pot.len()` matrix.
    fn lse_rows(mat: &[f64], pot: &[f64], eps: f64, out: &mut [f64]) {
        let len = pot.len();
        let row = |(k, o): (usize, &mut f64)| {
            let r = &mat[k * len..(k + 1) * len];
            let mx = r
                .iter()
                .zip(pot)
                .fold(f64::NEG_INFINITY, |acc, (&cc, &p)| acc.max(p - cc));
            let s: f64 = r
                .iter()
                .zip(pot)
                .map(|(&cc, &p)| ((p - cc - mx) / eps).exp())
                .sum();
            *o = mx / eps + s.ln();
        };
        if mat.len() >= PAR_MIN {
            out.par_iter_mut().enumerate().for_each(row);
        } else {
            out.iter_mut().enumerate().for_each(row);
        }
    }

    /// L1 row-marginal error of the current plan, given lse = LSE_j((g_j - C_ij) / eps).
    fn row_error(&self, lse: &[f64]) -> f64 {
        (0..self.a.len())
            .map(|i| ((self.f[i] / self.eps + lse[i]).exp() - self.a[i]).abs())
            .sum()
    }

    fn set_f(&mut self, lse: &[f64]) {
        for (i, l) in lse.iter().enumerate() {
            self.f[i] = self.eps * (self.log_a[i] - l);
        }
    }

    fn log_sweep(&mut self, lse_f: &mut [f64], lse_g: &mut [f64]) {
        Self::lse_rows(self.c, &self.g, self.eps, lse_f);
        self.set_f(lse_f);
        Self::lse_rows(&self.ct, &self.f, self.eps, lse_g);
        for (j, l) in lse_g.iter().enumerate() {
            self.g[j] = self.eps * (self.log_b[j] - l);
        }
    }

    fn run_log(&mut self, max_iter: usize, tol: f64) -> (bool, usize, f64) {
        let mut lse_f = vec![0.0; self.a.len()];
        let mut lse_g = vec![0.0; self.b.len()];
        let mut err = f64::INFINITY;
        for it in 0..max_iter {
            // The f pass measures, for free, the row error of the plan whose columns are exact.
            Self::lse_rows(self.c, &self.g, self.eps, &mut lse_f);
            if it > 0 {
                err = self.row_error(&lse_f);
                if err <= tol {
                    return (true, it, err);
                }
            }
            self.set_f(&lse_f);
            Self::lse_rows(&self.ct, &self.f, self.eps, &mut lse_g);
            for (j, l) in lse_g.iter().enumerate() {
                self.g[j] = self.eps * (self.log_b[j] - l);
            }
        }
        if max_iter > 0 {
            // The error of the plan returned: the loop measured the one before its last update.
            Self::lse_rows(self.c, &self.g, self.eps, &mut lse_f);
            err = self.row_error(&lse_f);
        }
        (err <= tol, max_iter, err)
    }

    /// The kernel K and its transpose, so both products are row-wise dot products.
    fn kernel(&self, k: &mut [f64], kt: &mut [f64]) {
        self.kernel_rows(k);
        let (n, m) = (self.a.len(), self.b.len());
        let tr = |(j, col): (usize, &mut [f64])| {
            for (i, x) in col.iter_mut().enumerate() {
                *x = k[i * m + j];
            }
        };
        if kt.len() >= PAR_MIN {
            kt.par_chunks_mut(n).enumerate().for_each(tr);
        } else {
            kt.chunks_mut(n).enumerate().for_each(tr);
        }
    }

    fn kernel_rows(&self, k: &mut [f64]) {
        let (m, eps) = (self.b.len(), self.eps);
        let fill = |(i, row): (usize, &mut [f64])| {
            let fi = self.f[i];
            let ci = &self.c[i * m..(i + 1) * m];
            for ((kk, &cc), &gj) in row.iter_mut().zip(ci).zip(&self.g) {
                *kk = ((fi + gj - cc) / eps).exp();
            }
        };
        if k.len() >= PAR_MIN {
            k.par_chunks_mut(m).enumerate().for_each(fill);
        } else {
            k.chunks_mut(m).enumerate().for_each(fill);
        }
    }

    fn run_stabilized(
        &mut self,
        max_iter: usize,
        tol: f64,
        check_every: usize,
    ) -> (bool, usize, f64) {
        let (n, m) = (self.a.len(), self.b.len());
        let mut lse_f = vec![0.0; n];
        let mut lse_g = vec![0.0; m];
        // One log-domain sweep first, so that every kernel row and column has entries near 1.
        self.log_sweep(&mut lse_f, &mut lse_g);
        let mut k = vec![0.0; n * m];
        let mut kt = vec![0.0; n * m];
        self.kernel(&mut k, &mut kt);
        let mut u = vec![1.0; n];
        let mut v = vec![1.0; m];
        let mut kv = vec![0.0; n];
        let mut ktu = vec![0.0; m];
        let mut err = f64::INFINITY;
        let mut it = 1;
        loop {
            mat_vec(&k, &v, &mut kv);
            // Columns are exact after the last v update; the rows of diag(u) K diag(v) are
            // u * (K v), and K v is what this u update needs anyway: the check is free.
            if it % check_every == 0 || it == max_iter {
                err = (0..n).map(|i| (u[i] * kv[i] - self.a[i]).abs()).sum();
                if err <= tol {
                    self.absorb(&mut u, &mut v);
                    return (true, it, err);
                }
            }
            if it >= max_iter {
                break;
            }
            it += 1;
            let mut ok = true;
            for i in 0..n {
                u[i] = self.a[i] / kv[i];
                ok &= u[i].is_finite() && u[i] > 0.0;
            }
            if ok {
                mat_vec(&kt, &u, &mut ktu);
                for j in 0..m {
                    v[j] = self.b[j] / ktu[j];
                    ok &= v[j].is_finite() && v[j] > 0.0;
                }
            }
            if !ok {
                // A kernel row or column underflowed: an exact log-domain sweep, then a new kernel.
                self.log_sweep(&mut lse_f, &mut lse_g);
                self.kernel(&mut k, &mut kt);
                u.fill(1.0);
                v.fill(1.0);
                continue;
            }
            if u.iter().chain(&v).any(|x| x.ln().abs() > ABSORB_AT) {
                self.absorb(&mut u, &mut v);
                self.kernel(&mut k, &mut kt);
            }
        }
        self.absorb(&mut u, &mut v);
        (false, max_iter, err)
    }

    /// Moves the scalings into the potentials: diag(u) K diag(v) = exp((f + g - C) / eps).
    fn absorb(&mut self, u: &mut [f64], v: &mut [f64]) {
        for (f, x) in self.f.iter_mut().zip(u.iter_mut()) {
            *f += self.eps * x.ln();
            *x = 1.0;
        }
        for (g, x) in self.g.iter_mut().zip(v.iter_mut()) {
            *g += self.eps * x.ln();
            *x = 1.0;
        }
    }
}

/// out = K v for a row-major K with `v.len()` columns; rows split across cores when large.
fn mat_vec(k: &[f64], v: &[f64], out: &mut [f64]) {
    let m = v.len();
    if k.len() >= PAR_MIN {
        out.par_iter_mut()
            .zip(k.par_chunks_exact(m))
            .for_each(|(o, row)| *o = dot(row, v));
    } else {
        for (o, row) in out.iter_mut().zip(k.chunks_exact(m)) {
            *o = dot(row, v);
        }
    }
}

/// Dot product, using AVX2 where the CPU has it. Both paths add in the same order (eight lanes,
/// no fused multiply-add), so the result does not depend on the machine.
#[inline]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { dot_avx2(x, y) };
        }
    }
    dot_lanes(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(x: &[f64], y: &[f64]) -> f64 {
    dot_lanes(x, y)
}

/// Dot product with eight independent sums, so the compiler can keep them in vector registers.
#[inline(always)]
fn dot_lanes(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}
