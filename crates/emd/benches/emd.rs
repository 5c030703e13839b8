//! Criterion benches of mouton-emd. Side-by-side ratios against scipy/POT come from
//! `bench/emd_vs_python.py`; these track mouton's own speed over time.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use mouton_emd::{
    delta_emd, emd2, sinkhorn, sliced_wasserstein_distance, wasserstein_1d, EmdOptions, MassPolicy,
    SinkhornMethod, SinkhornOptions, SlicedOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.gen::<f64>()).collect()
}

fn histogram(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let h: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() + 0.1).collect();
    let s: f64 = h.iter().sum();
    h.into_iter().map(|x| x / s).collect()
}

/// Squared Euclidean costs between random points in the unit square.
fn sq_cost(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let x = uniform(rng, 2 * n);
    let y = uniform(rng, 2 * n);
    (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            (x[2 * i] - y[2 * j]).powi(2) + (x[2 * i + 1] - y[2 * j + 1]).powi(2)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (u, v) = (uniform(&mut rng, 100_000), uniform(&mut rng, 100_000));
    c.bench_function("wasserstein_1d n=1e5", |b| {
        b.iter(|| wasserstein_1d(black_box(&u), black_box(&v), None, None, 1.0).unwrap())
    });
    let (p, q) = (
        histogram(&mut rng, 1_000_000),
        histogram(&mut rng, 1_000_000),
    );
    c.bench_function("delta_emd bins=1e6", |b| {
        b.iter(|| delta_emd(black_box(&p), black_box(&q), None, MassPolicy::Strict).unwrap())
    });

    let mut g = c.benchmark_group("emd2");
    g.sample_size(20);
    for n in [100, 200] {
        let (a, bb, m) = (
            histogram(&mut rng, n),
            histogram(&mut rng, n),
            sq_cost(&mut rng, n),
        );
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| emd2(&a, &bb, &m, &EmdOptions::default()).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sinkhorn n=200, 100 iterations");
    g.sample_size(20);
    let (a, bb, m) = (
        histogram(&mut rng, 200),
        histogram(&mut rng, 200),
        sq_cost(&mut rng, 200),
    );
    for method in [SinkhornMethod::Stabilized, SinkhornMethod::Log] {
        let opts = SinkhornOptions {
            epsilon: 0.01,
            max_iter: 100,
            tol: 0.0,
            method,
            ..Default::default()
        };
        g.bench_function(format!("{method:?}"), |b| {
            b.iter(|| sinkhorn(&a, &bb, &m, &opts).unwrap().cost)
        });
    }
    g.finish();

    let x: Vec<f32> = (0..256 * 784).map(|_| rng.gen::<f32>()).collect();
    let y: Vec<f32> = (0..256 * 784).map(|_| rng.gen::<f32>()).collect();
    let opts = SlicedOptions {
        n_projections: 50,
        p: 2.0,
        seed: 0,
    };
    let mut g = c.benchmark_group("sliced_wasserstein");
    g.sample_size(20);
    g.bench_function("256 vs 256 images of 28x28, 50 projections", |b| {
        b.iter(|| sliced_wasserstein_distance(&x, &y, 784, None, None, &opts).unwrap())
    });
    g.finish();
}

criterion_group!(emd_benches, benches);
criterion_main!(emd_benches);
