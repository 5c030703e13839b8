//! Each loss against its closed form in plain f64, and the properties the seeds' slides rely on.

use dfdx::prelude::*;
use mouton_losses::gan::{
    discriminator_bce, discriminator_bce_with, generator_non_saturating, generator_saturating,
    Labels,
};
use mouton_losses::gradient_penalty::gradient_penalty;
use mouton_losses::hinge::{discriminator_hinge, generator_hinge};
use mouton_losses::lsgan::{discriminator_lsgan, generator_lsgan, LsganTargets};
use mouton_losses::vae::{kl_divergence, reconstruction_bce, reconstruction_mse, KlForm};
use mouton_losses::wasserstein::{critic_loss, generator_loss};
use mouton_models::critic::Critic;
use mouton_models::sheep::Sheep2Critic;
use proptest::prelude::*;
use rand::SeedableRng;

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}
fn t(dev: &Cpu, v: &[f64]) -> Tensor<(usize,), f64, Cpu> {
    dev.tensor_from_vec(v.to_vec(), (v.len(),))
}
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}
fn logits(max: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-max..max, 1..20)
}

proptest! {
    #[test]
    fn gan_losses_equal_their_closed_forms(r in logits(50.0), f in logits(50.0)) {
        let dev = Cpu::default();
        let d = discriminator_bce(t(&dev, &r), t(&dev, &f)).array();
        let want = (r.iter().map(|&x| softplus(-x)).sum::<f64>()
            + f.iter().map(|&x| softplus(x)).sum::<f64>()) / (r.len() + f.len()) as f64;
        prop_assert!(close(d, want), "{} vs {}", d, want);
        let sat = generator_saturating(t(&dev, &f)).array();
        // log(1 - sigmoid(x)) = -softplus(x)
        prop_assert!(close(sat, mean(&f.iter().map(|&x| -softplus(x)).collect::<Vec<_>>())));
        let ns = generator_non_saturating(t(&dev, &f)).array();
        prop_assert!(close(ns, mean(&f.iter().map(|&x| softplus(-x)).collect::<Vec<_>>())));
    }

    #[test]
    fn label_smoothing_changes_only_the_real_targets(r in logits(20.0), f in logits(20.0), s in 0.7f64..1.0) {
        let dev = Cpu::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let labels = Labels { real: s, flip: 0.0 };
        labels.validate().unwrap();
        let d = discriminator_bce_with(t(&dev, &r), t(&dev, &f), &labels, &mut rng).array();
        // BCE(x, y) = softplus(x) - x y
        let want = (r.iter().map(|&x| softplus(x) - x * s).sum::<f64>()
            + f.iter().map(|&x| softplus(x)).sum::<f64>()) / (r.len() + f.len()) as f64;
        prop_assert!(close(d, want));
    }

    #[test]
    fn lsgan_hinge_and_wasserstein_equal_their_closed_forms(
        r in logits(50.0), f in logits(50.0), a in -1.0f64..0.5, b in 0.5f64..1.5, c in -0.5f64..1.5
    ) {
        let dev = Cpu::default();
        let tg = LsganTargets { a, b, c };
        let sq = |v: &[f64], k: f64| mean(&v.iter().map(|&x| (x - k) * (x - k)).collect::<Vec<_>>());
        prop_assert!(close(discriminator_lsgan(t(&dev, &r), t(&dev, &f), &tg).array(),
            0.5 * sq(&r, b) + 0.5 * sq(&f, a)));
        prop_assert!(close(generator_lsgan(t(&dev, &f), &tg).array(), 0.5 * sq(&f, c)));
        let relu = |x: f64| x.max(0.0);
        prop_assert!(close(discriminator_hinge(t(&dev, &r), t(&dev, &f)).array(),
            mean(&r.iter().map(|&x| relu(1.0 - x)).collect::<Vec<_>>())
                + mean(&f.iter().map(|&x| relu(1.0 + x)).collect::<Vec<_>>())));
        prop_assert!(close(generator_hinge(t(&dev, &f)).array(), -mean(&f)));
        let w = critic_loss(t(&dev, &r), t(&dev, &f)).array();
        prop_assert!(close(w, mean(&f) - mean(&r)));
        prop_assert!(close(generator_loss(t(&dev, &f)).array(), -mean(&f)));
        // Swapping real and fake negates the critic loss.
        prop_assert!(close(critic_loss(t(&dev, &f), t(&dev, &r)).array(), -w));
    }

    /// The slides' vanishing-gradient figure: as D(G(z)) -> 0 the saturating loss's gradient
    /// vanishes while the non-saturating one's does not.
    #[test]
    fn non_saturating_gradient_dominates_when_d_rejects_fakes(l in -40.0f64..-2.0) {
        let dev = Cpu::default();
        let x = t(&dev, &[l]);
        let gs = generator_saturating(x.leaky_trace()).backward().get(&x).as_vec()[0];
        let gn = generator_non_saturating(x.leaky_trace()).backward().get(&x).as_vec()[0];
        prop_assert!(gn.abs() > gs.abs());
        prop_assert!(gn.abs() > 0.88 && gs.abs() < 0.12);
    }

    #[test]
    fn no_nan_or_inf_for_huge_logits(r in logits(1e4), f in logits(1e4)) {
        let dev = Cpu::default();
        let (rt, ft) = (t(&dev, &r), t(&dev, &f));
        let finite = |g: &Gradients<f64, Cpu>, x: &Tensor<(usize,), f64, Cpu>| {
            g.get(x).as_vec().iter().all(|v| v.is_finite())
        };
        for loss in [
            discriminator_bce(rt.leaky_trace(), ft.leaky_trace()),
            generator_saturating(ft.leaky_trace()),
            generator_non_saturating(ft.leaky_trace()),
            discriminator_lsgan(rt.leaky_trace(), ft.leaky_trace(), &LsganTargets::default()),
            discriminator_hinge(rt.leaky_trace(), ft.leaky_trace()),
            critic_loss(rt.leaky_trace(), ft.leaky_trace()),
        ] {
            prop_assert!(loss.array().is_finite());
            let g = loss.backward();
            prop_assert!(finite(&g, &ft));
        }
    }

    #[test]
    fn kl_is_non_negative_and_zero_only_at_the_prior(
        mu in prop::collection::vec(-5.0f64..5.0, 6), lv in prop::collection::vec(-5.0f64..5.0, 6)
    ) {
        let dev = Cpu::default();
        let m = dev.tensor_from_vec(mu.clone(), (2usize, 3usize));
        let l = dev.tensor_from_vec(lv.clone(), (2usize, 3usize));
        let kl = kl_divergence(m.clone(), l.clone(), KlForm::Exact).unwrap().array();
        let want: f64 = mu.iter().zip(&lv).map(|(&m, &l)| -0.5 * (1.0 + l - m * m - l.exp())).sum::<f64>() / 2.0;
        prop_assert!((kl - want).abs() <= 1e-10 * (1.0 + want.abs()));
        prop_assert!(kl >= 0.0);
        let at_prior = mu.iter().chain(&lv).all(|&v| v == 0.0);
        prop_assert_eq!(kl == 0.0, at_prior);
        let fidle = kl_divergence(m, l, KlForm::FidleNoHalf).unwrap().array();
        prop_assert!((fidle - 2.0 * kl).abs() <= 1e-10 * (1.0 + kl));
    }

    #[test]
    fn reconstruction_losses_equal_their_closed_forms(
        x in prop::collection::vec(-30.0f64..30.0, 8), y in prop::collection::vec(0.0f64..1.0, 8)
    ) {
        let dev = Cpu::default();
        let xt = dev.tensor_from_vec(x.clone(), (2usize, 4usize));
        let yt = dev.tensor_from_vec(y.clone(), (2usize, 4usize));
        let mse = reconstruction_mse(xt.clone(), yt.clone()).unwrap().array();
        prop_assert!(close(mse, x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / 2.0));
        let bce = reconstruction_bce(xt, yt).unwrap().array();
        prop_assert!(close(bce, x.iter().zip(&y).map(|(&a, &b)| softplus(a) - a * b).sum::<f64>() / 2.0));
    }

    /// Scale the critic so that ||grad_x D(x_hat)|| = 1 exactly (LeakyReLU networks are
    /// positively homogeneous in the last layer's weights): the penalty and its gradient vanish.
    #[test]
    fn penalty_and_its_gradient_vanish_at_unit_gradient_norm(seed in 0u64..1000) {
        let dev = Cpu::seed_from_u64(seed);
        let mut d = Sheep2Critic::<f64, Cpu>::build(&dev);
        let x: Tensor<(usize, usize, usize, usize), f64, Cpu> = dev.sample_uniform_like(&(1, 1, 28, 28));
        let s = d.score(x.leaky_trace(), None).unwrap();
        let g = s.sum::<(), _>().backward().get(&x).as_vec();
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let w: Vec<f64> = d.dense.weight.as_vec().iter().map(|v| v / norm).collect();
        d.dense.weight.copy_from(&w);
        let (pen, stats) = gradient_penalty(&d, &x, 10.0, None, OwnedTape::default()).unwrap();
        prop_assert!(stats.penalty.array().abs() < 1e-20, "{}", stats.penalty.array());
        prop_assert!((stats.mean_grad_norm.array() - 1.0).abs() < 1e-12);
        let grads = pen.backward();
        for v in grads.get(&d.conv2.weight).as_vec().into_iter().chain(grads.get(&d.dense.weight).as_vec()) {
            prop_assert!(v.abs() < 1e-12);
        }
    }
}

#[test]
fn bce_at_logit_zero_is_ln_2() {
    let dev = Cpu::default();
    let z = t(&dev, &[0.0; 5]);
    assert!(close(
        discriminator_bce(z.clone(), z.clone()).array(),
        std::f64::consts::LN_2
    ));
    assert!(close(
        generator_non_saturating(z.clone()).array(),
        std::f64::consts::LN_2
    ));
    assert!(close(
        generator_saturating(z).array(),
        -std::f64::consts::LN_2
    ));
}

#[test]
fn label_noise_flips_about_the_asked_fraction() {
    let dev = Cpu::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // With logit 0 the loss is ln 2 whatever the targets, so look at the gradients instead:
    // d BCE / d logit = (sigmoid(0) - target) / 2N = +-1/(4N).
    let n = 4000;
    let r = t(&dev, &vec![0.0; n]);
    let f = t(&dev, &vec![0.0; n]);
    let labels = Labels {
        real: 1.0,
        flip: 0.1,
    };
    let g = discriminator_bce_with(r.leaky_trace(), f.leaky_trace(), &labels, &mut rng)
        .backward()
        .get(&r)
        .as_vec();
    let flipped = g.iter().filter(|&&v| v > 0.0).count() as f64 / n as f64;
    assert!((flipped - 0.1).abs() < 0.02, "{flipped}");
    assert!(Labels {
        real: 0.4,
        flip: 0.0
    }
    .validate()
    .is_err());
    assert!(Labels {
        real: 1.0,
        flip: 0.6
    }
    .validate()
    .is_err());
}

/// The training loop scores real images, splits the tape off, and puts it on the fakes: the
/// real scores must still get their gradient through every two-batch loss.
#[test]
fn real_scores_get_their_gradient_when_the_tape_moved_to_the_fakes() {
    type LossFn = fn(
        Tensor<(usize,), f64, Cpu>,
        Tensor<(usize,), f64, Cpu, OwnedTape<f64, Cpu>>,
    ) -> Tensor<(), f64, Cpu, OwnedTape<f64, Cpu>>;
    let dev = Cpu::default();
    let (r, f) = ([0.5f64, -1.0, 2.0], [0.3f64, -0.2, 1.0]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    type Want = Box<dyn Fn(f64) -> f64>;
    let cases: [(&str, LossFn, Want); 4] = [
        (
            "bce",
            |a, b| discriminator_bce(a, b),
            Box::new(move |x| (sig(x) - 1.0) / 6.0),
        ),
        (
            "lsgan",
            |a, b| discriminator_lsgan(a, b, &LsganTargets::default()),
            Box::new(|x| (x - 1.0) / 3.0),
        ),
        (
            "hinge",
            |a, b| discriminator_hinge(a, b),
            Box::new(|x| if x < 1.0 { -1.0 / 3.0 } else { 0.0 }),
        ),
        (
            "wasserstein",
            |a, b| critic_loss(a, b),
            Box::new(|_| -1.0 / 3.0),
        ),
    ];
    for (name, loss, want) in cases.iter() {
        let real = t(&dev, &r);
        // As in the trainer: the scores are computed with the tape, which then moves on.
        let (scored, tape) = (real.leaky_trace() * 1.0).split_tape();
        let fake = t(&dev, &f).put_tape(tape);
        let g = loss(scored, fake).backward();
        let got = g.get(&real).as_vec();
        for (i, &x) in r.iter().enumerate() {
            let w = want(x);
            assert!(
                (got[i] - w).abs() < 1e-12,
                "{name}, real[{i}]: {} vs {w}",
                got[i]
            );
        }
    }
}
