//! mouton's Adam and RMSprop against PyTorch's trajectories (fixture: `bench/optim_fixture.py`,
//! float64) and against dfdx's Adam on the same gradients; state save/load round trip.

use dfdx::optim::{Adam, AdamConfig, Optimizer as _};
use dfdx::prelude::*;
use mouton_models::weights::{WeightsFile, WeightsWriter};
use mouton_train::config::OptimizerKind;
use mouton_train::optim::Optimizer;
use serde_json::Value;

/// A module with one parameter vector of 5 (dfdx's Linear<5, 1> without using its bias).
type M = Linear<5, 1>;
type Built = dfdx::nn::modules::Linear<5, 1, f64, Cpu>;

fn with_grad(dev: &Cpu, m: &Built, g: &[f64]) -> Gradients<f64, Cpu> {
    let mut grads = m.alloc_grads();
    grads
        .get_or_alloc_mut(&m.weight)
        .unwrap()
        .copy_from_slice(g);
    grads
        .get_or_alloc_mut(&m.bias)
        .unwrap()
        .copy_from_slice(&[0.0]);
    let _ = dev;
    grads
}

#[test]
fn trajectories_match_pytorch() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/optim_torch.json")).unwrap();
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let p0 = floats(&fx["p0"]);
    let grads: Vec<Vec<f64>> = fx["grads"].as_array().unwrap().iter().map(floats).collect();
    let dev = Cpu::default();
    for case in fx["cases"].as_array().unwrap() {
        let p = &case["params"];
        let lr = p["lr"].as_f64().unwrap();
        let eps = p["eps"].as_f64().unwrap();
        let mut opt = match case["kind"].as_str().unwrap() {
            "adam" => {
                let b = floats(&p["betas"]);
                Optimizer::<f64>::new(OptimizerKind::Adam, lr, b[0], b[1], eps)
            }
            _ => Optimizer::<f64>::new(
                OptimizerKind::Rmsprop,
                lr,
                0.0,
                p["alpha"].as_f64().unwrap(),
                eps,
            ),
        };
        let mut m = dev.build_module::<M, f64>();
        m.weight.copy_from(&p0);
        for (g, want) in grads.iter().zip(case["trajectory"].as_array().unwrap()) {
            let mut gr = with_grad(&dev, &m, g);
            opt.step(&mut m, &mut gr).unwrap();
            let got = m.weight.as_vec();
            for (a, b) in got.iter().zip(floats(want)) {
                assert!(
                    (a - b).abs() <= 1e-15 * (1.0 + b.abs()),
                    "{case}: {a} vs torch {b}"
                );
            }
        }
    }
}

#[test]
fn adam_matches_dfdx_adam_and_state_round_trips() {
    let dev = Cpu::seed_from_u64(1);
    let mut ours_m = dev.build_module::<M, f64>();
    let mut theirs_m = ours_m.clone();
    let mut ours = Optimizer::<f64>::new(OptimizerKind::Adam, 1e-2, 0.9, 0.999, 1e-8);
    let mut theirs = Adam::new(
        &theirs_m,
        AdamConfig {
            lr: 1e-2,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: None,
        },
    );
    let x: Tensor<Rank2<4, 5>, f64, Cpu> = dev.sample_normal();
    for _ in 0..5 {
        let mut g1 = ours_m
            .forward(x.clone().traced(ours_m.alloc_grads()))
            .square()
            .sum()
            .backward();
        let g2 = theirs_m
            .forward(x.clone().traced(theirs_m.alloc_grads()))
            .square()
            .sum()
            .backward();
        ours.step(&mut ours_m, &mut g1).unwrap();
        theirs.update(&mut theirs_m, &g2).unwrap();
        for (a, b) in ours_m.weight.as_vec().iter().zip(theirs_m.weight.as_vec()) {
            assert!((a - b).abs() < 1e-12, "{a} vs dfdx {b}");
        }
    }
    // Save, load into a fresh optimizer, and the next steps agree exactly.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    let mut w = WeightsWriter::new();
    ours.save(&mut w, "opt.", &mut ours_m).unwrap();
    w.write(&path).unwrap();
    let mut restored = Optimizer::<f64>::new(OptimizerKind::Adam, 1e-2, 0.9, 0.999, 1e-8);
    restored
        .load(&WeightsFile::open(&path).unwrap(), "opt.", &mut ours_m)
        .unwrap();
    assert_eq!(restored.updates(), 5);
    let mut copy = ours_m.clone();
    let mut g1 = ours_m
        .forward(x.clone().traced(ours_m.alloc_grads()))
        .square()
        .sum()
        .backward();
    let mut g2 = copy
        .forward(x.clone().traced(copy.alloc_grads()))
        .square()
        .sum()
        .backward();
    ours.step(&mut ours_m, &mut g1).unwrap();
    restored.step(&mut copy, &mut g2).unwrap();
    assert_eq!(ours_m.weight.as_vec(), copy.weight.as_vec());
    // Loading state saved for another module shape is an error, not a panic.
    let other = dev.build_module::<Linear<3, 1>, f64>();
    let mut other = other;
    let err = Optimizer::<f64>::new(OptimizerKind::Adam, 1e-2, 0.9, 0.999, 1e-8)
        .load(&WeightsFile::open(&path).unwrap(), "opt.", &mut other)
        .unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
}

/// The update path used off the CPU (state as tensors, element-wise tensor ops), run on the
/// CPU: same trajectory as the CPU path to rounding, the same norm, state that survives a
/// save/load into the other path, and a NaN norm for a non-finite weight.
#[test]
fn the_device_path_matches_the_cpu_path() {
    let dev = Cpu::seed_from_u64(3);
    let x: Tensor<Rank2<4, 5>, f64, Cpu> = dev.sample_normal();
    for kind in [OptimizerKind::Adam, OptimizerKind::Rmsprop] {
        let new = || Optimizer::<f64>::new(kind, 1e-2, 0.9, 0.99, 1e-8);
        let mut cpu_m = dev.build_module::<M, f64>();
        let mut dev_m = cpu_m.clone();
        let (mut cpu, mut on_dev) = (new(), new().with_device_state());
        let grads_of = |m: &Built| {
            m.forward(x.clone().traced(m.alloc_grads()))
                .square()
                .sum()
                .backward()
        };
        for step in 0..6 {
            let (mut g1, mut g2) = (grads_of(&cpu_m), grads_of(&dev_m));
            let n1 = cpu.step(&mut cpu_m, &mut g1).unwrap();
            let n2 = on_dev.step(&mut dev_m, &mut g2).unwrap();
            assert!(
                (n1 - n2).abs() <= 1e-12 * n1,
                "{kind:?} step {step}: norm {n1} vs {n2}"
            );
            for (a, b) in cpu_m.weight.as_vec().iter().zip(dev_m.weight.as_vec()) {
                assert!((a - b).abs() <= 1e-12, "{kind:?} step {step}: {a} vs {b}");
            }
            if step == 2 {
                // Device-path state saved, loaded into a CPU-path optimizer: same next steps.
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("opt.safetensors");
                let mut w = WeightsWriter::new();
                on_dev.save(&mut w, "opt.", &mut dev_m).unwrap();
                w.write(&path).unwrap();
                let mut restored = new();
                restored
                    .load(&WeightsFile::open(&path).unwrap(), "opt.", &mut dev_m)
                    .unwrap();
                cpu = restored;
            }
        }
        let mut bad = dev_m.clone();
        bad.weight.copy_from(&[f64::INFINITY, 0.0, 0.0, 0.0, 0.0]);
        let mut g = grads_of(&bad);
        let norm = on_dev.step(&mut bad, &mut g).unwrap();
        assert!(
            norm.is_nan(),
            "{kind:?}: a non-finite weight gives a NaN norm, got {norm}"
        );
        let mut bad = cpu_m.clone();
        bad.weight.copy_from(&[f64::NAN, 0.0, 0.0, 0.0, 0.0]);
        let mut g = grads_of(&bad);
        let norm = cpu.step(&mut bad, &mut g).unwrap();
        assert!(norm.is_nan(), "{kind:?}: CPU path, got {norm}");
    }
}
