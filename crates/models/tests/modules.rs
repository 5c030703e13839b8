//! mouton's layers inside dfdx's machinery: build, optimizer step, safetensors, initialization.

use dfdx::optim::{Adam, AdamConfig, Optimizer};
use dfdx::prelude::*;
use mouton_models::modules::{Conv2d, Same};

type Layer = Conv2d<2, 4, 3, 2, Same, f32, Cpu>;

#[test]
fn dfdx_adam_updates_every_parameter() {
    let dev = Cpu::seed_from_u64(0);
    let mut conv = Layer::build(&dev);
    let x: Tensor<(usize, usize, usize, usize), f32, Cpu> = dev.sample_normal_like(&(3, 2, 7, 7));
    let grads = conv.alloc_grads();
    let y = conv.forward(x.trace(grads)).unwrap();
    assert_eq!(*y.shape(), (3, 4, 4, 4));
    let grads = y.square().mean().backward();
    let (w0, b0) = (conv.weight.as_vec(), conv.bias.as_vec());
    let mut opt = Adam::new(&conv, AdamConfig::default());
    opt.update(&mut conv, &grads)
        .expect("every parameter has a gradient");
    let (w1, b1) = (conv.weight.as_vec(), conv.bias.as_vec());
    // Adam's first step moves every parameter with a non-zero gradient by about lr.
    let moved = w0
        .iter()
        .zip(&w1)
        .filter(|(a, b)| (*a - *b).abs() > 1e-4)
        .count();
    assert!(
        moved > w0.len() * 9 / 10,
        "{moved} of {} weights moved",
        w0.len()
    );
    assert!(b0.iter().zip(&b1).all(|(a, b)| a != b), "biases moved");
}

#[test]
fn safetensors_round_trip() {
    let dev = Cpu::seed_from_u64(1);
    let conv = Layer::build(&dev);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conv.safetensors");
    conv.save_safetensors(&path).unwrap();
    let mut other = Layer::build(&Cpu::seed_from_u64(2));
    assert_ne!(other.weight.array(), conv.weight.array());
    other.load_safetensors(&path).unwrap();
    assert_eq!(other.weight.array(), conv.weight.array());
    assert_eq!(other.bias.array(), conv.bias.array());
}

#[test]
fn keras_initialization() {
    // Glorot uniform on (16 + 32) * 9 fans: limit sqrt(6 / 432); bias zeros.
    let conv = Conv2d::<16, 32, 3, 1, Same, f64, Cpu>::build(&Cpu::seed_from_u64(3));
    let w = conv.weight.as_vec();
    let limit = (6.0f64 / ((16 + 32) * 9) as f64).sqrt();
    assert!(w.iter().all(|v| v.abs() <= limit));
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    // Uniform(-l, l) has variance l^2 / 3; 4608 samples put the estimate within a few %.
    assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.08, "{var}");
    assert!(conv.bias.as_vec().iter().all(|&b| b == 0.0));
}
