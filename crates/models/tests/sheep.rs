//! SHEEP1 end to end on the CPU: a GAN step reaches every parameter of both networks.

use dfdx::losses::binary_cross_entropy_with_logits_loss;
use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::prelude::*;
use mouton_models::critic::Critic;
use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator, LATENT};
use rand::SeedableRng;

#[test]
fn one_gan_step_updates_both_networks() {
    let dev = Cpu::seed_from_u64(7);
    let mut g = Sheep1Generator::<f32, Cpu>::build(&dev);
    let mut d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
    let mut opt_g = Adam::new(
        &g,
        AdamConfig {
            lr: 1e-4,
            ..Default::default()
        },
    );
    let mut opt_d = Adam::new(
        &d,
        AdamConfig {
            lr: 1e-4,
            ..Default::default()
        },
    );
    let batch = 4;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);

    // Discriminator step on real (label 1) and fake (label 0) images.
    let real: Tensor<(usize, usize, usize, usize), f32, Cpu> =
        dev.sample_uniform_like(&(batch, 1, 28, 28));
    let z: Tensor<(usize, Const<LATENT>), f32, Cpu> = dev.sample_normal_like(&(batch, Const));
    let fake = g.forward(z.clone()).unwrap();
    let d_before = d.conv1.weight.as_vec();
    let grads = d.alloc_grads();
    let real_logits = d.score(real.trace(grads), Some(&mut rng)).unwrap();
    let ones = dev.ones_like(real_logits.shape());
    let loss_real = binary_cross_entropy_with_logits_loss(real_logits, ones);
    let grads = loss_real.backward();
    let fake_logits = d.score(fake.trace(grads), Some(&mut rng)).unwrap();
    let zeros = dev.zeros_like(fake_logits.shape());
    let d_loss = binary_cross_entropy_with_logits_loss(fake_logits, zeros);
    assert!(d_loss.array().is_finite());
    let grads = d_loss.backward();
    opt_d
        .update(&mut d, &grads)
        .expect("every discriminator parameter has a gradient");
    assert_ne!(d.conv1.weight.as_vec(), d_before);

    // Generator step: non-saturating loss -log D(G(z)), through the discriminator.
    let g_before = (g.dense.weight.as_vec(), g.conv3.bias.as_vec());
    let grads = g.alloc_grads();
    let logits = d
        .score(g.forward(z.trace(grads)).unwrap(), Some(&mut rng))
        .unwrap();
    let ones = dev.ones_like(logits.shape());
    let g_loss = binary_cross_entropy_with_logits_loss(logits, ones);
    let grads = g_loss.backward();
    opt_g
        .update(&mut g, &grads)
        .expect("every generator parameter has a gradient");
    assert_ne!(
        g.dense.weight.as_vec(),
        g_before.0,
        "the gradient reached the first layer"
    );
    assert_ne!(g.conv3.bias.as_vec(), g_before.1);
}

#[test]
fn discriminator_rejects_other_image_sizes() {
    let dev = Cpu::default();
    let d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
    let x: Tensor<(usize, usize, usize, usize), f32, Cpu> = dev.zeros_like(&(1, 1, 32, 32));
    assert!(d.score(x, None).is_err());
}

#[test]
fn summaries_agree_with_the_built_modules() {
    let dev = Cpu::default();
    let g = Sheep1Generator::<f32, Cpu>::build(&dev);
    let d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
    assert_eq!(
        Sheep1Generator::<f32, Cpu>::summary().total(),
        g.num_trainable_params()
    );
    assert_eq!(
        Sheep1Discriminator::<f32, Cpu>::summary().total(),
        d.num_trainable_params()
    );
    assert_eq!(g.num_trainable_params(), 779_969);
    assert_eq!(d.num_trainable_params(), 396_609);
    // The shapes the tables claim are the shapes the forward passes produce.
    let img = g
        .forward(dev.zeros_like(&(1usize, Const::<LATENT>)))
        .unwrap();
    assert_eq!(*img.shape(), (1, 1, 28, 28));
    assert_eq!(mouton_models::summary::thousands(1_234_567), "1,234,567");
}
