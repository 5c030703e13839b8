//! Golden parity with POT and scipy, on fixtures written by `bench/emd_fixtures.py`.

use mouton_emd::{
    emd, sinkhorn, wasserstein_1d, wasserstein_1d_pow, EmdOptions, MassPolicy, SinkhornMethod,
    SinkhornOptions,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    emd2: Vec<EmdCase>,
    wasserstein_1d: Vec<W1dCase>,
    sinkhorn: Vec<SinkhornCase>,
}

#[derive(Deserialize)]
struct EmdCase {
    kind: String,
    a: Vec<f64>,
    b: Vec<f64>,
    cost_matrix: Vec<f64>,
    n: usize,
    m: usize,
    expected: f64,
}

#[derive(Deserialize)]
struct W1dCase {
    u: Vec<f64>,
    v: Vec<f64>,
    u_weights: Option<Vec<f64>>,
    v_weights: Option<Vec<f64>>,
    p: f64,
    pot_w_pow_p: f64,
    scipy_w1: Option<f64>,
}

#[derive(Deserialize)]
struct SinkhornCase {
    a: Vec<f64>,
    b: Vec<f64>,
    cost_matrix: Vec<f64>,
    n: usize,
    m: usize,
    epsilon: f64,
    expected_cost: f64,
    expected_plan: Vec<f64>,
}

fn fixtures() -> Fixtures {
    let text = include_str!("fixtures/pot_scipy.json");
    serde_json::from_str(text).expect("fixture file parses")
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

#[test]
fn emd2_matches_pot_to_1e9() {
    let fx = fixtures();
    assert!(fx.emd2.len() >= 20);
    let opts = EmdOptions {
        mass: MassPolicy::Normalize,
        ..Default::default()
    };
    for (k, c) in fx.emd2.iter().enumerate() {
        assert_eq!(c.cost_matrix.len(), c.n * c.m);
        let ot = emd(&c.a, &c.b, &c.cost_matrix, &opts).unwrap();
        let tol = if c.expected == 0.0 { 1e-12 } else { 1e-9 };
        let err = if c.expected == 0.0 {
            ot.cost.abs()
        } else {
            rel(ot.cost, c.expected)
        };
        assert!(
            err <= tol,
            "case {k} ({}, {}x{}): {} vs POT {}",
            c.kind,
            c.n,
            c.m,
            ot.cost,
            c.expected
        );
        // The plan is feasible: non-negative with the normalized marginals.
        let (sa, sb): (f64, f64) = (c.a.iter().sum(), c.b.iter().sum());
        for i in 0..c.n {
            let row: f64 = ot.plan[i * c.m..(i + 1) * c.m].iter().sum();
            assert!((row - c.a[i] / sa).abs() < 1e-12, "case {k} row {i}");
        }
        for j in 0..c.m {
            let col: f64 = (0..c.n).map(|i| ot.plan[i * c.m + j]).sum();
            assert!((col - c.b[j] / sb).abs() < 1e-12, "case {k} col {j}");
        }
        assert!(ot.plan.iter().all(|&x| x >= 0.0));
    }
}

#[test]
fn wasserstein_1d_matches_pot_and_scipy() {
    let fx = fixtures();
    let mut scipy_checked = 0;
    for (k, c) in fx.wasserstein_1d.iter().enumerate() {
        let (uw, vw) = (c.u_weights.as_deref(), c.v_weights.as_deref());
        let pow = wasserstein_1d_pow(&c.u, &c.v, uw, vw, c.p).unwrap();
        assert!(
            rel(pow, c.pot_w_pow_p) <= 1e-12,
            "case {k}: W_p^p {pow} vs POT {}",
            c.pot_w_pow_p
        );
        let w = wasserstein_1d(&c.u, &c.v, uw, vw, c.p).unwrap();
        assert!(rel(w, c.pot_w_pow_p.powf(1.0 / c.p)) <= 1e-12);
        if let Some(s) = c.scipy_w1 {
            assert!(rel(w, s) <= 1e-12, "case {k}: {w} vs scipy {s}");
            scipy_checked += 1;
        }
    }
    assert!(scipy_checked >= 5);
}

#[test]
fn sinkhorn_matches_pot_log_domain() {
    let fx = fixtures();
    for method in [SinkhornMethod::Stabilized, SinkhornMethod::Log] {
        for (k, c) in fx.sinkhorn.iter().enumerate() {
            let opts = SinkhornOptions {
                epsilon: c.epsilon,
                max_iter: 100_000,
                tol: 1e-13,
                method,
                mass: MassPolicy::Normalize,
                ..Default::default()
            };
            let res = sinkhorn(&c.a, &c.b, &c.cost_matrix, &opts)
                .unwrap()
                .require_converged()
                .unwrap();
            assert!(
                rel(res.cost, c.expected_cost) <= 1e-9,
                "{method:?} case {k}: {} vs POT {}",
                res.cost,
                c.expected_cost
            );
            let worst = res
                .plan
                .iter()
                .zip(&c.expected_plan)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 1e-10,
                "{method:?} case {k}: plan differs by {worst}"
            );
            assert_eq!(res.plan.len(), c.n * c.m);
        }
    }
}
