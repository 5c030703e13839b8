//! `batch_norm.cu` against the CPU's training-mode batch norm, launched as
//! `src/layers/cuda/batch_norm.rs` launches it.

use dfdx::prelude::*;
use mouton_models::layers::{batch_norm_nchw, Nchw};

use super::layers::minus_half;
use super::{max_rel_err, skip, Program};
use crate::common::values;

#[test]
fn batch_norm_kernels_match_the_cpu_layer() {
    if skip() {
        return;
    }
    let cpu = Cpu::default();
    // (n, c, h, w, offset): BatchNorm2d shapes, BatchNorm1d's (n, c, 1, 1), features of more
    // values than threads, and values far from 0 (where one-pass variances lose digits).
    let cases = [
        (4, 3, 5, 5, 0.0),
        (64, 16, 1, 1, 0.0),
        (3, 2, 20, 20, 0.0),
        (5, 4, 3, 3, 100.0),
    ];
    let eps = 1e-5;
    for (i, (n, c, h, w, offset)) in cases.into_iter().enumerate() {
        let seed = 40 + 10 * i as u64;
        let len = n * c * h * w;
        let xv: Vec<f32> = values(len, seed)
            .into_iter()
            .map(|v| (3.0 * v + offset) as f32)
            .collect();
        let gv: Vec<f32> = values(c, seed + 1)
            .iter()
            .map(|v| 1.0 + *v as f32)
            .collect();
        let bv: Vec<f32> = values(c, seed + 2).iter().map(|v| *v as f32).collect();
        let rv: Vec<f32> = values(len, seed + 3).iter().map(|v| *v as f32).collect();
        // CPU: momentum 1 leaves the batch's mean and unbiased variance in the running stats.
        let x: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let gamma = cpu.tensor_from_vec(gv.clone(), (c,));
        let beta = cpu.tensor_from_vec(bv.clone(), (c,));
        let (mut rm, mut rvar) = (cpu.zeros_like(&(c,)), cpu.zeros_like(&(c,)));
        let y = batch_norm_nchw(
            x.leaky_trace(),
            &gamma,
            &beta,
            Some((&mut rm, &mut rvar)),
            eps,
            1.0,
        )
        .unwrap();
        let yv = y.retaped::<NoneTape>().as_vec();
        let r = cpu.tensor_from_vec(rv.clone(), (n, c, h, w));
        let grads = (y * r).sum::<(), _>().backward();

        let mut prog = Program::new(&["batch_norm.cu"]);
        prog.buffer("x", &xv)
            .buffer("gamma", &gv)
            .buffer("beta", &bv)
            .buffer("dy", &rv)
            .buffer("mean", &vec![f32::NAN; c])
            .buffer("inv_std", &vec![f32::NAN; c])
            .buffer("var", &vec![f32::NAN; c])
            .buffer("y", &vec![f32::NAN; len])
            .buffer("sums", &vec![f32::NAN; 2 * c])
            .buffer("dgamma", &vec![0.5f32; c])
            .buffer("dbeta", &vec![0.5f32; c])
            .buffer("dx", &vec![0.5f32; len]);
        let l = h * w;
        let out = prog
            .launch(
                "bn_stats",
                [c, 1, 1],
                [256, 1, 1],
                0,
                &format!("mean inv_std var x {n} {c} {l} {eps:?}"),
            )
            .launch(
                "bn_forward",
                [3, 1, 1],
                [256, 1, 1],
                0,
                &format!("y x mean inv_std gamma beta {c} {l} {len}"),
            )
            .launch(
                "bn_backward_sums",
                [c, 1, 1],
                [256, 1, 1],
                0,
                &format!("sums dgamma dbeta dy x mean inv_std {n} {c} {l}"),
            )
            .launch(
                "bn_backward_dx_add",
                [2, 1, 1],
                [256, 1, 1],
                0,
                &format!("dx dy x mean inv_std gamma sums {c} {l} {len}"),
            )
            .run();
        let what = format!("case {i} ({n}, {c}, {h}, {w}) + {offset}");
        let checks = [
            ("y", out.get::<f32>("y"), yv, 1e-5),
            ("mean", out.get::<f32>("mean"), rm.as_vec(), 1e-6),
            (
                "unbiased variance",
                out.get::<f32>("var"),
                rvar.as_vec(),
                1e-6,
            ),
            (
                "dx",
                minus_half(out.get("dx")),
                grads.get(&x).as_vec(),
                1e-4,
            ),
            (
                "dgamma",
                minus_half(out.get("dgamma")),
                grads.get(&gamma).as_vec(),
                1e-5,
            ),
            (
                "dbeta",
                minus_half(out.get("dbeta")),
                grads.get(&beta).as_vec(),
                1e-5,
            ),
        ];
        for (name, got, want, tol) in checks {
            let e = max_rel_err(&got, &want);
            println!("{what}: {name}: relative error {e:.2e}");
            assert!(
                e <= tol,
                "{what}: {name}: relative error {e:.2e} > {tol:.0e}"
            );
        }
    }
}
