//! The VAE trains with mouton's losses: reparameterization, BCE reconstruction and KL, through
//! both encoder heads, and the loss falls.

use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::prelude::*;
use mouton_losses::vae::{kl_divergence, reconstruction_bce, reparameterize, vae_loss, KlForm};
use mouton_models::vae::Vae;
use rand::SeedableRng;

#[test]
fn vae_loss_falls_and_both_heads_learn() {
    let dev = Cpu::seed_from_u64(3);
    let mut vae = Vae::<2, f32, Cpu>::build(&dev);
    let mut opt = Adam::new(
        &vae,
        AdamConfig {
            lr: 2e-3,
            ..Default::default()
        },
    );
    // 16 images: a bright square at one of 4 places (a 4-mode data set).
    let n = 16;
    let mut px = vec![0f32; n * 784];
    for i in 0..n {
        let (oy, ox) = (4 + 12 * (i % 2), 4 + 12 * ((i / 2) % 2));
        for y in oy..oy + 8 {
            for x in ox..ox + 8 {
                px[i * 784 + y * 28 + x] = 1.0;
            }
        }
    }
    let x = dev.tensor_from_vec(px.clone(), (n, 1usize, 28usize, 28usize));
    let target = dev.tensor_from_vec(px, (n, 784usize));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut losses = Vec::new();
    let before = vae.logvar.weight.as_vec();
    for _ in 0..40 {
        let (mu, logvar) = vae.encode(x.clone().traced(vae.alloc_grads())).unwrap();
        // The KL term needs both heads; the sample z needs them too: split the tapes so each
        // op is recorded once on the tape that reaches the loss.
        let kl_mu = mu.with_empty_tape();
        let kl_lv = logvar.with_empty_tape();
        let z = reparameterize(mu, logvar, &mut rng).unwrap();
        let logits = vae.decode(z).unwrap().reshape_like(&(n, 784usize));
        let recon = reconstruction_bce(logits, target.clone()).unwrap();
        let kl = kl_divergence(kl_mu, kl_lv, KlForm::Exact).unwrap();
        let loss = vae_loss(recon, kl, 1.0);
        losses.push(loss.array());
        let grads = loss.backward();
        opt.update(&mut vae, &grads)
            .expect("every parameter has a gradient");
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert_ne!(
        vae.logvar.weight.as_vec(),
        before,
        "the log-variance head learned"
    );
}
