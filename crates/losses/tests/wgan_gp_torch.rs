//! WGAN-GP critic loss and its full parameter gradient against PyTorch's double backward
//! (fixture: `bench/wgan_gp_fixture.py`, float64), in f64 (1e-10) and f32 (1e-4); and the
//! critic's tangent pass against `torch.func.jvp`.
//!
//! Inputs and weights are splitmix64 streams regenerated here, so the fixture stays small: per
//! parameter it holds every gradient entry (or 4096 sampled ones for the two big convolutions)
//! and 16 random +-1 projections of the whole gradient. Errors are relative to the largest
//! gradient entry of the tensor (entries near 0 have no meaningful relative error of their own).

use dfdx::prelude::*;
use mouton_losses::gradient_penalty::{interpolate, wgan_gp_critic_loss};
use mouton_models::critic::Critic;
use mouton_models::layers::Nchw;
use mouton_models::ops::Real;
use mouton_models::sheep::Sheep2Critic;
use serde_json::Value;

fn uniform(tag: u64, n: usize) -> Vec<f64> {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n as u64)
        .map(|k| {
            let mut z = k
                .wrapping_add(tag.wrapping_mul(GOLDEN))
                .wrapping_add(GOLDEN);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-53)
        })
        .collect()
}

fn fixture() -> Value {
    let text = include_str!("fixtures/wgan_gp_torch.json");
    serde_json::from_str(text).expect("fixture is JSON")
}

/// Fills the critic's parameters in the fixture's order (tags 1..8).
fn critic<E: Dtype + Real + num_traits::Float + rand_distr::uniform::SampleUniform>(
    dev: &Cpu,
) -> Sheep2Critic<E, Cpu>
where
    Cpu: Device<E>,
{
    let mut d = Sheep2Critic::<E, Cpu>::build(dev);
    let fans = [
        Some(1040.0),
        None,
        Some(3072.0),
        None,
        Some(4096.0),
        None,
        Some(2049.0),
        None,
    ];
    let vals = |t: usize, n: usize| -> Vec<E> {
        let scale = fans[t - 1].map_or(0.1, |f: f64| (6.0 / f).sqrt());
        uniform(t as u64, n)
            .into_iter()
            .map(|u| E::of((u * 2.0 - 1.0) * scale))
            .collect()
    };
    d.conv1.weight.copy_from(&vals(1, 1024));
    d.conv1.bias.copy_from(&vals(2, 64));
    d.conv2.weight.copy_from(&vals(3, 128 * 64 * 16));
    d.conv2.bias.copy_from(&vals(4, 128));
    d.conv3.weight.copy_from(&vals(5, 128 * 128 * 16));
    d.conv3.bias.copy_from(&vals(6, 128));
    d.dense.weight.copy_from(&vals(7, 2048));
    d.dense.bias.copy_from(&vals(8, 1));
    d
}

fn images<E: Dtype + Real>(dev: &Cpu, tag: u64, m: usize) -> Nchw<E, NoneTape> {
    let v = uniform(tag, m * 784).into_iter().map(E::of).collect();
    dev.tensor_from_vec(v, (m, 1, 28, 28))
}

fn to_f64<E: Dtype + num_traits::Float>(v: Vec<E>) -> Vec<f64> {
    v.into_iter().map(|x| x.to_f64().unwrap()).collect()
}

fn check<E>(tol: f64)
where
    E: Dtype + Real + num_traits::Float + rand_distr::uniform::SampleUniform,
    Cpu: Device<E>,
{
    let fx = fixture();
    let dev = Cpu::default();
    let d = critic::<E>(&dev);
    let m = fx["batch"].as_u64().unwrap() as usize;
    let (real, fake) = (images::<E>(&dev, 20, m), images::<E>(&dev, 21, m));
    let e: Vec<E> = uniform(22, m).into_iter().map(E::of).collect();
    let lambda = fx["lambda"].as_f64().unwrap();
    let (loss, parts) =
        wgan_gp_critic_loss(&d, &real, &fake, &e, lambda, d.alloc_grads(), None).unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
    let num = |k: &str| fx[k].as_f64().unwrap();
    let penalty = parts.penalty.penalty.array().to_f64().unwrap();
    let loss_value = loss.array().to_f64().unwrap();
    println!(
        "{}: penalty {penalty} (torch {}), loss {loss_value} (torch {})",
        std::any::type_name::<E>(),
        num("penalty"),
        num("loss")
    );
    assert!(rel(penalty, num("penalty")) <= tol.min(1e-5), "penalty");
    assert!(rel(loss_value, num("loss")) <= tol.min(1e-5), "loss");
    let mean_norm = parts.penalty.mean_grad_norm.array().to_f64().unwrap();
    assert!(rel(mean_norm, num("mean_grad_norm")) <= tol.min(1e-5));
    let grads = loss.backward();

    let ours: Vec<Vec<f64>> = vec![
        to_f64(grads.get(&d.conv1.weight).as_vec()),
        to_f64(grads.get(&d.conv1.bias).as_vec()),
        to_f64(grads.get(&d.conv2.weight).as_vec()),
        to_f64(grads.get(&d.conv2.bias).as_vec()),
        to_f64(grads.get(&d.conv3.weight).as_vec()),
        to_f64(grads.get(&d.conv3.bias).as_vec()),
        to_f64(grads.get(&d.dense.weight).as_vec()),
        to_f64(grads.get(&d.dense.bias).as_vec()),
    ];
    let mut worst = 0.0f64;
    for (t, (p, g)) in fx["params"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&ours)
        .enumerate()
    {
        let t = t + 1;
        let name = p["name"].as_str().unwrap();
        let scale = p["max_abs"].as_f64().unwrap().max(1e-12);
        for (i, v) in p["indices"]
            .as_array()
            .unwrap()
            .iter()
            .zip(p["values"].as_array().unwrap())
        {
            let (i, v) = (i.as_u64().unwrap() as usize, v.as_f64().unwrap());
            let err = (g[i] - v).abs() / scale;
            worst = worst.max(err);
            assert!(
                err <= tol,
                "{name}[{i}]: {} vs torch {v} (error {err:e})",
                g[i]
            );
        }
        let n = g.len();
        for (j, want) in p["projections"].as_array().unwrap().iter().enumerate() {
            let signs = uniform(200 + 16 * t as u64 + j as u64, n);
            let got: f64 = signs
                .iter()
                .zip(g)
                .map(|(&s, &x)| if s < 0.5 { -x } else { x })
                .sum();
            // A sum of n +-entries: its error scale is sqrt(n) times the entries'.
            let err = (got - want.as_f64().unwrap()).abs() / (scale * (n as f64).sqrt());
            worst = worst.max(err);
            assert!(
                err <= tol,
                "{name} projection {j}: {got} vs {want} ({err:e})"
            );
        }
    }
    println!(
        "{}: worst gradient error {worst:e} (relative to each tensor's largest entry)",
        std::any::type_name::<E>()
    );

    // The tangent pass at x_hat along v equals torch.func.jvp.
    let x_hat = interpolate(&real, &fake, &e).unwrap();
    let v: Vec<E> = uniform(23, m * 784)
        .into_iter()
        .map(|u| E::of(u * 2.0 - 1.0))
        .collect();
    let v = dev.tensor_from_vec(v, (m, 1, 28, 28));
    let (_, rec) = d.score_recorded(x_hat, None).unwrap();
    let ju = to_f64(d.tangent(v, &rec).unwrap().as_vec());
    let want: Vec<f64> = fx["jvp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let jscale = want.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    for (a, b) in ju.iter().zip(&want) {
        assert!((a - b).abs() / jscale <= tol, "jvp {a} vs torch {b}");
    }
}

#[test]
fn wgan_gp_gradient_matches_pytorch_double_backward_f64() {
    check::<f64>(1e-10);
}

#[test]
fn wgan_gp_gradient_matches_pytorch_double_backward_f32() {
    check::<f32>(1e-4);
}
