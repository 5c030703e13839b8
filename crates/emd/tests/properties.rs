//! The mathematical properties of every distance, as proptests.

use mouton_emd::{
    delta_emd, emd2, sinkhorn, sliced_wasserstein_distance, wasserstein_1d, EmdOptions, MassPolicy,
    SinkhornMethod, SinkhornOptions, SlicedOptions,
};
use proptest::prelude::*;

const STRICT: MassPolicy = MassPolicy::Strict;

/// A histogram of `n` bins with total mass 1 (at least one bin positive).
fn histogram(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0f64..10.0, n).prop_map(|mut h| {
        h[0] += 0.5;
        let s: f64 = h.iter().sum();
        h.iter_mut().for_each(|x| *x /= s);
        h
    })
}

fn histograms(k: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    (1usize..24).prop_flat_map(move |n| prop::collection::vec(histogram(n), k))
}

fn samples() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-100.0f64..100.0, 1..40)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn grid_cost(n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|k| ((k / n) as f64 - (k % n) as f64).abs())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn nonnegative_and_symmetric(h in histograms(2), u in samples(), v in samples(), p in 1.0f64..4.0) {
        let (a, b) = (&h[0], &h[1]);
        let ab = delta_emd(a, b, None, STRICT).unwrap();
        prop_assert!(ab >= 0.0);
        prop_assert!(close(ab, delta_emd(b, a, None, STRICT).unwrap(), 1e-12));
        let uv = wasserstein_1d(&u, &v, None, None, p).unwrap();
        prop_assert!(uv >= 0.0);
        prop_assert!(close(uv, wasserstein_1d(&v, &u, None, None, p).unwrap(), 1e-12));
        let c = grid_cost(a.len());
        let e = emd2(a, b, &c, &EmdOptions::default()).unwrap();
        prop_assert!(e >= -1e-12);
        prop_assert!(close(e, emd2(b, a, &c, &EmdOptions::default()).unwrap(), 1e-9));
    }

    #[test]
    fn distance_to_itself_is_zero(h in histograms(1), u in samples(), p in 1.0f64..4.0) {
        let a = &h[0];
        prop_assert_eq!(delta_emd(a, a, None, STRICT).unwrap(), 0.0);
        prop_assert_eq!(wasserstein_1d(&u, &u, None, None, p).unwrap(), 0.0);
        let e = emd2(a, a, &grid_cost(a.len()), &EmdOptions::default()).unwrap();
        prop_assert!(e.abs() < 1e-12, "{}", e);
    }

    #[test]
    fn triangle_inequality_w1_histograms(h in histograms(3)) {
        let w = |x: &Vec<f64>, y: &Vec<f64>| delta_emd(x, y, None, STRICT).unwrap();
        prop_assert!(w(&h[0], &h[2]) <= w(&h[0], &h[1]) + w(&h[1], &h[2]) + 1e-12);
    }

    #[test]
    fn shift_moves_w1_by_c(u in samples(), c in -50.0f64..50.0) {
        let shifted: Vec<f64> = u.iter().map(|x| x + c).collect();
        let w = wasserstein_1d(&u, &shifted, None, None, 1.0).unwrap();
        prop_assert!(close(w, c.abs(), 1e-9), "{} vs {}", w, c.abs());
    }

    #[test]
    fn delta_equals_cdf_formula_equals_exact_ot(h in histograms(2)) {
        let (a, b) = (&h[0], &h[1]);
        let n = a.len();
        let delta = delta_emd(a, b, None, STRICT).unwrap();
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let cdf = wasserstein_1d(&x, &x, Some(a), Some(b), 1.0).unwrap();
        let exact = emd2(a, b, &grid_cost(n), &EmdOptions::default()).unwrap();
        prop_assert!(close(delta, cdf, 1e-9), "delta {} vs cdf {}", delta, cdf);
        prop_assert!(close(delta, exact, 1e-9), "delta {} vs exact {}", delta, exact);
    }

    #[test]
    fn exact_ot_on_positions_matches_delta(h in histograms(2), gaps in prop::collection::vec(0.01f64..5.0, 24)) {
        let (a, b) = (&h[0], &h[1]);
        let n = a.len();
        let mut x = vec![0.0];
        for g in &gaps[..n - 1] {
            x.push(x.last().unwrap() + g);
        }
        let c: Vec<f64> = (0..n * n).map(|k| (x[k / n] - x[k % n]).abs()).collect();
        let delta = delta_emd(a, b, Some(&x), STRICT).unwrap();
        let exact = emd2(a, b, &c, &EmdOptions::default()).unwrap();
        prop_assert!(close(delta, exact, 1e-9), "delta {} vs exact {}", delta, exact);
    }

    #[test]
    fn sliced_of_1d_data_is_exact_1d(u in samples(), v in samples(), p in 1.0f64..3.0, seed in any::<u64>()) {
        let opts = SlicedOptions { n_projections: 3, p, seed };
        let sw = sliced_wasserstein_distance(&u, &v, 1, None, None, &opts).unwrap();
        let w = wasserstein_1d(&u, &v, None, None, p).unwrap();
        prop_assert!(close(sw, w, 1e-9), "sliced {} vs exact {}", sw, w);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sinkhorn_approaches_exact_as_epsilon_shrinks(
        n in 2usize..12,
        m in 2usize..12,
        seed in prop::collection::vec(0.0f64..1.0, 2 * 144 + 24),
    ) {
        let norm = |v: &[f64]| { let s: f64 = v.iter().sum(); v.iter().map(|x| x / s).collect::<Vec<_>>() };
        let a = norm(&seed[..n].iter().map(|x| x + 0.1).collect::<Vec<_>>());
        let b = norm(&seed[12..12 + m].iter().map(|x| x + 0.1).collect::<Vec<_>>());
        let c: Vec<f64> = seed[24..24 + n * m].to_vec();
        let exact = emd2(&a, &b, &c, &EmdOptions::default()).unwrap();
        let c_max = c.iter().fold(0.0f64, |x, &y| x.max(y));
        let (mut last_gap, mut smallest) = (f64::INFINITY, f64::NAN);
        for eps in [0.1, 0.02, 0.004] {
            for method in [SinkhornMethod::Stabilized, SinkhornMethod::Log] {
                let opts = SinkhornOptions { epsilon: eps, max_iter: 200_000, tol: 1e-11, method, ..Default::default() };
                let res = sinkhorn(&a, &b, &c, &opts).unwrap();
                // Sinkhorn slows without bound as epsilon falls: random costs here have needed
                // 344,000 iterations at 0.02 and millions at 0.004 (see the test below).
                prop_assert!(res.converged || eps < 0.1, "{:?} eps {} did not converge", method, eps);
                // Converged or not, the plan's columns are exact and its rows off by the error it
                // reports, so it costs at least the optimum less max(C) error / 2.
                let floor = exact - c_max * res.marginal_error / 2.0;
                prop_assert!(res.cost >= floor - 1e-9, "{:?} eps {}: {} < {}", method, eps, res.cost, floor);
                if !res.converged {
                    continue;
                }
                let gap = res.cost - exact;
                prop_assert!(gap <= last_gap + 1e-9, "gap grew: {} after {}", gap, last_gap);
                if method == SinkhornMethod::Log { (last_gap, smallest) = (gap, eps); }
            }
        }
        // The gap is O(eps log(nm)): at eps = 0.004 below 0.004 ln(144) ~ 0.02.
        prop_assert!(last_gap <= smallest * ((n * m) as f64).ln() + 1e-9, "gap {} at eps {}", last_gap, smallest);
    }
}

/// Costs with many ties at zero (proptest shrank a slow random case to them): Sinkhorn's
/// worst-case linear rate worsens like exp(-range(C) / eps), and at eps = 0.004 both methods
/// need about 1.15 million iterations for tol 1e-11. Capped earlier, both must say so and
/// report the returned plan's error, the same for both (they run the same iteration); given
/// enough iterations, they converge.
#[test]
fn sinkhorn_can_need_millions_of_iterations_at_small_epsilon() {
    let a = [
        0.19621773360898423,
        0.4091791312736901,
        0.15237378779820995,
        0.13209920425365546,
        0.11013014306546026,
    ];
    let b = [
        0.10247266366380632,
        0.06710379828567066,
        0.07111630072374134,
        0.0820778585578405,
        0.0571883413251355,
        0.026862211825355458,
        0.14700393827496347,
        0.12685468506828243,
        0.04616079855110136,
        0.14105451111115083,
        0.1321048926129521,
    ];
    let mut c = [0.0; 55];
    for (k, v) in [
        (17, 0.5455643846035991),
        (20, 0.4868741419607246),
        (21, 0.8023284403487161),
        (28, 0.3170150388476867),
        (31, 0.8169093618654659),
        (32, 0.691849417004004),
        (39, 0.26355489155811684),
        (42, 0.9074061196832993),
        (43, 0.014855052016203147),
        (44, 0.4112972898895979),
        (45, 0.41063968413142227),
        (46, 0.0024845116650168337),
        (47, 0.8026205319187774),
        (48, 0.4037283383087438),
        (49, 0.020577238716898524),
        (50, 0.7439840064574107),
        (51, 0.9800526733978934),
        (52, 0.6625221504058231),
        (53, 0.7786695230899201),
        (54, 0.8089302822621076),
    ] {
        c[k] = v;
    }
    let run = |method, max_iter| {
        let opts = SinkhornOptions {
            epsilon: 0.004,
            max_iter,
            tol: 1e-11,
            method,
            ..Default::default()
        };
        sinkhorn(&a, &b, &c, &opts).unwrap()
    };
    let (stab, log) = (
        run(SinkhornMethod::Stabilized, 20_000),
        run(SinkhornMethod::Log, 20_000),
    );
    assert!(!stab.converged && !log.converged);
    for r in [&stab, &log] {
        // The error reported is the returned plan's.
        let rows: f64 = (0..5)
            .map(|i| (r.plan[i * 11..(i + 1) * 11].iter().sum::<f64>() - a[i]).abs())
            .sum();
        assert!(
            (rows - r.marginal_error).abs() <= 1e-6 * rows,
            "{rows} vs {r:?}"
        );
    }
    assert!(stab.marginal_error > 1e-6, "{}", stab.marginal_error);
    let gap = (stab.marginal_error - log.marginal_error).abs();
    assert!(gap <= 1e-3 * stab.marginal_error, "{stab:?} vs {log:?}");
    assert!(close(stab.cost, log.cost, 1e-9));
    let done = run(SinkhornMethod::Stabilized, 2_000_000);
    assert!(done.converged && done.iterations > 1_000_000, "{done:?}");
    let exact = emd2(&a, &b, &c, &EmdOptions::default()).unwrap();
    assert!(done.cost >= exact && done.cost - exact < 0.004 * 55f64.ln());
}

#[test]
fn sliced_is_deterministic_and_detects_a_shift() {
    let x: Vec<f32> = (0..64 * 16)
        .map(|k| ((k * 37) % 101) as f32 / 101.0)
        .collect();
    let y: Vec<f32> = x.iter().map(|v| v + 0.5).collect();
    let opts = SlicedOptions {
        n_projections: 64,
        p: 2.0,
        seed: 3,
    };
    let a = sliced_wasserstein_distance(&x, &y, 16, None, None, &opts).unwrap();
    let b = sliced_wasserstein_distance(&x, &y, 16, None, None, &opts).unwrap();
    assert_eq!(a, b);
    // y is x shifted by s = 0.5 * (1, ..., 1), |s| = 2: each projection's W_2 is |<dir, s>|, and
    // E <dir, s>^2 = |s|^2 / d, so SW_2 -> 2 / sqrt(16) = 0.5 (64 directions: within ~20 %).
    assert!((a - 0.5).abs() < 0.1, "{a}");
    let same = sliced_wasserstein_distance(&x, &x, 16, None, None, &opts).unwrap();
    assert_eq!(same, 0.0);
}

/// Any f64 at all, hostile values often.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -10.0f64..10.0,
        1 => Just(0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-f64::INFINITY),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE / 4.0),
        1 => any::<f64>(),
    ]
}

fn values(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(any_value(), 0..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Library code never panics on user input: every call returns Ok or a typed error.
    #[test]
    fn no_input_makes_any_function_panic(
        a in values(6), b in values(6), c in values(40), x in values(6),
        p in any_value(), eps in any_value(), dim in 0usize..4, k in 0usize..3,
    ) {
        let _ = delta_emd(&a, &b, Some(&x), MassPolicy::Strict);
        let _ = delta_emd(&a, &b, None, MassPolicy::Normalize);
        let _ = wasserstein_1d(&a, &b, Some(&x), None, p);
        let _ = wasserstein_1d(&a, &b, None, None, 1.0);
        let opts = EmdOptions { max_iter: 10_000, mass: MassPolicy::Normalize };
        let _ = emd2(&a, &b, &c, &opts);
        let _ = emd2(&a, &b, &c, &EmdOptions::default());
        for method in [SinkhornMethod::Stabilized, SinkhornMethod::Log] {
            let so = SinkhornOptions { epsilon: eps, max_iter: 50, method, ..Default::default() };
            let _ = sinkhorn(&a, &b, &c, &so);
        }
        let so = SlicedOptions { n_projections: k, p, seed: 1 };
        let _ = sliced_wasserstein_distance(&c, &a, dim, Some(&x), None, &so);
    }

    /// Well-formed but extreme inputs still give an answer, not a panic or a hang.
    #[test]
    fn extreme_costs_terminate(n in 1usize..6, m in 1usize..6, scale in prop_oneof![Just(1e-310), Just(1e-300), Just(1.0), Just(1e300)]) {
        let a = vec![1.0 / n as f64; n];
        let b = vec![1.0 / m as f64; m];
        let c: Vec<f64> = (0..n * m).map(|k| ((k * 7) % 5) as f64 * scale).collect();
        let opts = EmdOptions { mass: MassPolicy::Normalize, ..Default::default() };
        let w = emd2(&a, &b, &c, &opts).unwrap();
        prop_assert!(w >= 0.0);
    }
}
