#![allow(clippy::needless_range_loop)] // index loops mirror the maths here
//! FIDLE's fully connected GAN: parameter counts, batch norm gradients against finite
//! differences (f64), running statistics, and mlp-d's tangent pass.

use dfdx::prelude::*;
use mouton_models::critic::Critic;
use mouton_models::generator::Generator;
use mouton_models::layers::{batch_norm_train, Nchw};
use mouton_models::mlp::{MlpDiscriminator, MlpGenerator};
use proptest::prelude::*;

#[test]
fn parameter_counts_match_the_tables() {
    let dev = Cpu::default();
    let g = MlpGenerator::<f32, Cpu>::build(&dev);
    let d = MlpDiscriminator::<f32, Cpu>::build(&dev);
    assert_eq!(g.num_trainable_params(), 1_513_616);
    assert_eq!(MlpGenerator::<f32, Cpu>::summary().total(), 1_513_616);
    assert_eq!(d.num_trainable_params(), 533_505);
    assert_eq!(MlpDiscriminator::<f32, Cpu>::summary().total(), 533_505);
    assert_eq!(g.bn3.eps, 0.8, "FIDLE's BatchNorm1d(out, 0.8) sets epsilon");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// d/dx, d/dgamma, d/dbeta of sum(w * BN(x)) against central differences.
    #[test]
    fn batch_norm_gradients_match_finite_differences(
        n in 2usize..6, c in 1usize..5, seed in 0u64..1000
    ) {
        let dev = Cpu::seed_from_u64(seed);
        let x: Tensor<(usize, usize), f64, Cpu> = dev.sample_normal_like(&(n, c));
        let w: Tensor<(usize, usize), f64, Cpu> = dev.sample_normal_like(&(n, c));
        let g: Tensor<(usize,), f64, Cpu> = dev.sample_uniform_like(&(c,));
        let b: Tensor<(usize,), f64, Cpu> = dev.sample_normal_like(&(c,));
        let f = |x: &Tensor<(usize, usize), f64, Cpu>, g: &Tensor<(usize,), f64, Cpu>, b: &Tensor<(usize,), f64, Cpu>| {
            let (mut rm, mut rv) = (dev.zeros_like(&(c,)), dev.ones_like(&(c,)));
            let y = batch_norm_train(x.clone(), g, b, &mut rm, &mut rv, 1e-3, 0.1).unwrap();
            y.as_vec().iter().zip(w.as_vec()).map(|(a, b)| a * b).sum::<f64>()
        };
        let (mut rm, mut rv) = (dev.zeros_like(&(c,)), dev.ones_like(&(c,)));
        let y = batch_norm_train(x.leaky_trace(), &g, &b, &mut rm, &mut rv, 1e-3, 0.1).unwrap();
        let grads = (y * w.clone()).sum::<(), _>().backward();
        let h = 1e-6;
        let (gx, gg, gb) = (grads.get(&x).as_vec(), grads.get(&g).as_vec(), grads.get(&b).as_vec());
        let bump = |v: &[f64], k: usize, d: f64| { let mut v = v.to_vec(); v[k] += d; v };
        for k in 0..n * c {
            let (p, m) = (dev.tensor_from_vec(bump(&x.as_vec(), k, h), (n, c)), dev.tensor_from_vec(bump(&x.as_vec(), k, -h), (n, c)));
            let fd = (f(&p, &g, &b) - f(&m, &g, &b)) / (2.0 * h);
            prop_assert!((fd - gx[k]).abs() < 1e-5 * (1.0 + fd.abs()), "dx[{}]: {} vs {}", k, fd, gx[k]);
        }
        for k in 0..c {
            let (p, m) = (dev.tensor_from_vec(bump(&g.as_vec(), k, h), (c,)), dev.tensor_from_vec(bump(&g.as_vec(), k, -h), (c,)));
            let fd = (f(&x, &p, &b) - f(&x, &m, &b)) / (2.0 * h);
            prop_assert!((fd - gg[k]).abs() < 1e-5 * (1.0 + fd.abs()));
            let (p, m) = (dev.tensor_from_vec(bump(&b.as_vec(), k, h), (c,)), dev.tensor_from_vec(bump(&b.as_vec(), k, -h), (c,)));
            let fd = (f(&x, &g, &p) - f(&x, &g, &m)) / (2.0 * h);
            prop_assert!((fd - gb[k]).abs() < 1e-5 * (1.0 + fd.abs()));
        }
    }
}

#[test]
fn running_statistics_follow_pytorch_and_drive_inference() {
    let dev = Cpu::default();
    let mut g = MlpGenerator::<f64, Cpu>::build(&dev);
    g.bn2.momentum = 1.0; // running stats = the last batch's
    let z: Tensor<(usize, usize), f64, Cpu> = dev.sample_normal_like(&(8, 128));
    let train = g.generate(z.clone(), true).unwrap().as_vec();
    // With momentum 1 everywhere, inference on the same batch is training up to the
    // unbiased-vs-biased variance factor: close but not equal.
    g.bn3.momentum = 1.0;
    g.bn4.momentum = 1.0;
    let _ = g.generate(z.clone(), true).unwrap();
    let eval = g.generate(z, false).unwrap().as_vec();
    let diff = train
        .iter()
        .zip(&eval)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    assert!(diff > 0.0 && diff < 0.2, "{diff}");
    assert!(g.bn2.running_var.as_vec().iter().all(|v| *v > 0.0));
}

#[test]
fn mlp_critic_tangent_is_the_directional_derivative() {
    let dev = Cpu::seed_from_u64(5);
    let mut d = MlpDiscriminator::<f64, Cpu>::build(&dev);
    let x: Nchw<f64, NoneTape> = dev.sample_uniform_like(&(3, 1, 28, 28));
    let u: Nchw<f64, NoneTape> = dev.sample_normal_like(&(3, 1, 28, 28));
    let (s0, rec) = d.score_recorded(x.clone(), None).unwrap();
    let ju = d.tangent(u.clone(), &rec).unwrap().as_vec();
    let h = 1e-7;
    let (s1, rec1) = d.score_recorded(x + u.clone() * h, None).unwrap();
    let crossed = rec
        .slopes
        .iter()
        .zip(&rec1.slopes)
        .any(|(a, b)| a.as_vec() != b.as_vec());
    if !crossed {
        for i in 0..3 {
            let fd = (s1.as_vec()[i] - s0.as_vec()[i]) / h;
            assert!(
                (fd - ju[i]).abs() < 1e-5 * (1.0 + ju[i].abs()),
                "{fd} vs {}",
                ju[i]
            );
        }
    }
    // Its weight gradient reaches every layer, never a bias.
    let t = d.tangent(u.traced(d.alloc_grads()), &rec).unwrap();
    let grads = t.sum::<(), _>().backward();
    assert!(grads.get(&d.l2.weight).as_vec().iter().any(|&v| v != 0.0));
    assert!(grads.get(&d.l1.bias).as_vec().iter().all(|&v| v == 0.0));
    // And it trains: a dfdx optimizer finds every parameter's gradient.
    use dfdx::optim::{Optimizer, Sgd, SgdConfig};
    let mut opt = Sgd::new(&d, SgdConfig::default());
    let s = d
        .score(
            dev.sample_uniform_like(&(2, 1, 28, 28))
                .traced(d.alloc_grads()),
            None,
        )
        .unwrap();
    opt.update(&mut d, &s.sum::<(), _>().backward()).unwrap();
}

#[test]
fn vae_parameter_count_and_generator_range() {
    use mouton_models::vae::Vae;
    let dev = Cpu::default();
    let mut vae = Vae::<2, f32, Cpu>::build(&dev);
    assert_eq!(vae.num_trainable_params(), 134_165);
    assert_eq!(Vae::<2, f32, Cpu>::summary().total(), 134_165);
    let z: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(3, 2));
    let img = vae.generate(z, false).unwrap().as_vec();
    assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
}
