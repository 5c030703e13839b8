//! `fused_update.cu` against its rule as `Rule` documents it (PyTorch's order, in `f32`
//! without fused multiply-adds): the same bits for every parameter and moment, and the sum of
//! the squared gradients.

use super::{skip, Program};
use crate::common::values;

/// One step of `Rule::Adam` / `Rule::RmsProp`, element by element, as their docs state it.
fn reference(adam: bool, c: [f32; 8], p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let [b1, one_b1, b2, one_b2, step, bc2_sqrt, lr, eps] = c;
    for i in 0..p.len() {
        let gi = g[i];
        let vi = v[i] * b2 + gi * gi * one_b2;
        if adam {
            let mi = m[i] * b1 + gi * one_b1;
            m[i] = mi;
            p[i] -= step * mi / (vi.sqrt() / bc2_sqrt + eps);
        } else {
            p[i] -= lr * gi / (vi.sqrt() + eps);
        }
        v[i] = vi;
    }
}

#[test]
fn fused_updates_follow_their_rule_bit_for_bit() {
    if skip() {
        return;
    }
    let n = 1000;
    let f = |seed| -> Vec<f32> { values(n, seed).into_iter().map(|v| v as f32).collect() };
    // Parameters as small as their updates, so that an update's last bits show in theirs.
    let p0: Vec<f32> = f(1).iter().map(|v| 1e-4 * v).collect();
    let g = f(2);
    let m0: Vec<f32> = f(3).iter().map(|v| 0.1 * v).collect();
    let v0: Vec<f32> = f(4).iter().map(|v| 0.01 * v * v).collect();
    // Adam at step 3 (beta 0.5, 0.9, lr 2e-4), and RMSprop (alpha 0.99, lr 1e-3).
    let t = 3;
    let (b1, b2) = (0.5f32, 0.9f32);
    let adam = [
        b1,
        1.0 - b1,
        b2,
        1.0 - b2,
        2e-4 / (1.0 - b1.powi(t)),
        (1.0 - b2.powi(t)).sqrt(),
        2e-4,
        1e-8,
    ];
    let rms = [0.0, 1.0, 0.99, 1.0 - 0.99, 0.0, 1.0, 1e-3, 1e-8];
    for (is_adam, c) in [(true, adam), (false, rms)] {
        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
        reference(is_adam, c, &mut p, &mut m, &mut v, &g);
        let coef = std::iter::once(i32::from(is_adam).to_string())
            .chain(c.iter().map(|x| format!("{x:?}")))
            .collect::<Vec<_>>()
            .join(",");
        let blocks = 3;
        let mut prog = Program::new(&["fused_update.cu"]);
        prog.buffer("p", &p0)
            .buffer("stage", &vec![f32::NAN; n])
            .buffer("m", &m0)
            .buffer("v", &v0)
            .buffer("g", &g)
            .buffer("partial", &vec![f32::NAN; blocks])
            .buffer("out", &[f32::NAN])
            .launch(
                "fused_update",
                [blocks, 1, 1],
                [256, 1, 1],
                0,
                &format!("p stage m v g {n} {coef} partial"),
            )
            .launch(
                "sum_partials",
                [1, 1, 1],
                [256, 1, 1],
                0,
                &format!("out partial {blocks}"),
            );
        let out = prog.run();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let rule = if is_adam { "Adam" } else { "RMSprop" };
        assert_eq!(bits(&out.get::<f32>("p")), bits(&p), "{rule}: parameters");
        assert_eq!(bits(&out.get::<f32>("stage")), bits(&p), "{rule}: mirror");
        assert_eq!(
            bits(&out.get::<f32>("v")),
            bits(&v),
            "{rule}: second moments"
        );
        if is_adam {
            assert_eq!(
                bits(&out.get::<f32>("m")),
                bits(&m),
                "{rule}: first moments"
            );
        }
        let sum: f64 = g.iter().map(|x| (x * x) as f64).sum();
        let got = out.get::<f32>("out")[0] as f64;
        assert!(
            (got - sum).abs() <= 1e-5 * sum,
            "{rule}: sum of g^2 {got} against {sum}"
        );
    }
}

#[test]
fn a_non_finite_update_makes_the_sum_nan() {
    if skip() {
        return;
    }
    let mut g = vec![0.5f32; 300];
    g[257] = f32::INFINITY;
    let mut prog = Program::new(&["fused_update.cu"]);
    prog.buffer("p", &vec![1.0f32; 300])
        .buffer("stage", &vec![0.0f32; 300])
        .buffer("m", &vec![0.0f32; 300])
        .buffer("v", &vec![0.0f32; 300])
        .buffer("g", &g)
        .buffer("partial", &[0.0f32; 2])
        .buffer("out", &[0.0f32])
        .launch(
            "fused_update",
            [2, 1, 1],
            [256, 1, 1],
            0,
            "p stage m v g 300 0,0,1,0.99,0.01,0,1,0.001,1e-8 partial",
        )
        .launch("sum_partials", [1, 1, 1], [256, 1, 1], 0, "out partial 2");
    let out = prog.run();
    assert!(out.get::<f32>("out")[0].is_nan());
    assert!(out.get::<f32>("p")[257].is_nan());
}
