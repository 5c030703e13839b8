//! Times mouton's training pieces on the CPU, for `bench/torch_vs_mouton.py` (which runs the
//! same work in PyTorch and prints the ratios). Prints one JSON object per line.
//!
//! `cargo run --release -p mouton-train --example bench_steps -- [repeats]`

use std::time::Instant;

use dfdx::prelude::*;
use mouton_losses::gradient_penalty::wgan_gp_critic_loss;
use mouton_models::critic::Critic;
use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator, LATENT};
use mouton_train::config::{OptimizerKind, Overrides, Preset};
use mouton_train::optim::Optimizer;
use mouton_train::trainer::{train, RunOptions};
use rand::SeedableRng;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    mouton_train::keep_freed_memory(); // as the mouton binary does
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dev = Cpu::seed_from_u64(0);
    let g = Sheep1Generator::<f32, Cpu>::build(&dev);
    let mut d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
    let b = 64;
    let z: Tensor<(usize, Const<LATENT>), f32, Cpu> = dev.sample_normal_like(&(b, Const));
    let x: Tensor<(usize, usize, usize, usize), f32, Cpu> =
        dev.sample_uniform_like(&(b, 1, 28, 28));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);

    let t = time(repeats, || {
        let y = g.forward(z.clone().traced(g.alloc_grads())).unwrap();
        let _ = y.sum::<(), _>().backward();
    });
    println!("{{\"name\": \"sheep1-g fwd+bwd b64\", \"seconds\": {t}}}");
    let t = time(repeats, || {
        let s = d
            .score(x.clone().traced(d.alloc_grads()), Some(&mut rng))
            .unwrap();
        let _ = s.sum::<(), _>().backward();
    });
    println!("{{\"name\": \"sheep1-d fwd+bwd b64\", \"seconds\": {t}}}");

    let fake = g.forward(z.clone()).unwrap();
    let e: Vec<f32> = (0..b).map(|i| (i as f32 + 0.5) / b as f32).collect();
    let mut opt = Optimizer::<f32>::new(OptimizerKind::Adam, 1e-4, 0.0, 0.9, 1e-8);
    let t = time(repeats, || {
        let (loss, _) =
            wgan_gp_critic_loss(&d, &x, &fake, &e, 10.0, d.alloc_grads(), Some(&mut rng)).unwrap();
        let mut grads = loss.backward();
        opt.step(&mut d, &mut grads).unwrap();
    });
    println!("{{\"name\": \"wgan-gp critic step b64\", \"seconds\": {t}}}");

    // The VAE preset's encoder (to mu and log sigma^2) and decoder (latent 2 to logits).
    let vae = mouton_models::vae::Vae::<2, f32, Cpu>::build(&dev);
    let t = time(repeats.max(11), || {
        let (mu, logvar) = vae.encode(x.clone().traced(vae.alloc_grads())).unwrap();
        let _ = (mu.sum::<(), _>() + logvar.sum::<(), _>()).backward();
    });
    println!("{{\"name\": \"vae encoder fwd+bwd b64\", \"seconds\": {t}}}");
    let zv: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(b, 2));
    let t = time(repeats.max(11), || {
        let y = vae.decode(zv.clone().traced(vae.alloc_grads())).unwrap();
        let _ = y.sum::<(), _>().backward();
    });
    println!("{{\"name\": \"vae decoder fwd+bwd b64\", \"seconds\": {t}}}");

    // Whole training steps through the real loop (synthetic data), images/s from metrics.
    for preset in [Preset::Sheep1, Preset::Sheep2, Preset::Vae] {
        let steps = match preset {
            Preset::Sheep1 => 12,
            Preset::Sheep2 => 6,
            Preset::Vae => 24,
        };
        let cfg = Overrides {
            preset: Some(preset),
            max_steps: Some(steps),
            synthetic_count: Some(2048),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let data = mouton_train::data::load(&cfg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut rates = Vec::new();
        train(&cfg, &data, dir.path(), &RunOptions::default(), &mut |e| {
            if let mouton_train::trainer::Event::Step(s) = e {
                if s.step > 1 {
                    rates.push(s.images_per_s);
                }
            }
        })
        .unwrap();
        let rate = median(rates);
        println!(
            "{{\"name\": \"{} training images/s\", \"images_per_s\": {rate}, \"batch\": {}, \"n_critic\": {}}}",
            match preset {
                Preset::Sheep1 => "sheep1",
                Preset::Sheep2 => "sheep2",
                Preset::Vae => "vae",
            },
            cfg.batch_size,
            cfg.n_critic
        );
    }
}
