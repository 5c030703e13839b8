//! Times mouton-emd on inputs written by `bench/emd_vs_python.py`, for a side-by-side run.
//!
//! `cargo run --release -p mouton-emd --example timing -- DIR REPEATS` reads `DIR/<case>.f64`
//! files (little-endian f64) and prints one JSON line per case: the best wall time of REPEATS
//! runs and the computed value.

use std::path::Path;
use std::time::Instant;

use mouton_emd::{
    delta_emd, emd2, sinkhorn, wasserstein_1d, EmdOptions, MassPolicy, SinkhornMethod,
    SinkhornOptions,
};

fn read(dir: &Path, name: &str) -> Vec<f64> {
    let bytes = std::fs::read(dir.join(format!("{name}.f64")))
        .unwrap_or_else(|e| panic!("reading {name}.f64 in {}: {e}", dir.display()));
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

fn time<F: FnMut() -> f64>(case: &str, reps: usize, mut f: F) {
    let mut best = f64::INFINITY;
    let mut value = 0.0;
    for _ in 0..reps {
        let t = Instant::now();
        value = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{{\"case\": \"{case}\", \"seconds\": {best:e}, \"value\": {value:e}}}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map(String::as_str).unwrap_or("bench/out/emd"));
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);

    let (u, v) = (read(dir, "w1d_u"), read(dir, "w1d_v"));
    time("wasserstein_1d_1e6", reps, || {
        wasserstein_1d(&u, &v, None, None, 1.0).expect("valid input")
    });
    let (p, q) = (read(dir, "delta_p"), read(dir, "delta_q"));
    time("delta_1e6", reps, || {
        delta_emd(&p, &q, None, MassPolicy::Normalize).expect("valid input")
    });
    for n in [200, 500] {
        let (a, b, c) = (
            read(dir, &format!("ot{n}_a")),
            read(dir, &format!("ot{n}_b")),
            read(dir, &format!("ot{n}_m")),
        );
        let opts = EmdOptions {
            mass: MassPolicy::Normalize,
            ..Default::default()
        };
        // Millisecond-scale cases get more repeats (the same on the Python side).
        time(&format!("emd2_{n}"), reps.max(20), || {
            emd2(&a, &b, &c, &opts).expect("valid input")
        });
    }
    let (a, b, c) = (read(dir, "sk_a"), read(dir, "sk_b"), read(dir, "sk_m"));
    let eps = read(dir, "sk_eps")[0];
    for (name, method) in [
        ("sinkhorn_500_stabilized", SinkhornMethod::Stabilized),
        ("sinkhorn_500_log", SinkhornMethod::Log),
    ] {
        // A fixed 1000 iterations (tol 0) on both sides, so the work is the same.
        let opts = SinkhornOptions {
            epsilon: eps,
            max_iter: 1000,
            tol: 0.0,
            method,
            mass: MassPolicy::Normalize,
            ..Default::default()
        };
        time(name, reps.min(3), || {
            sinkhorn(&a, &b, &c, &opts).expect("valid input").cost
        });
    }
}
