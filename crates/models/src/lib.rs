//! # mouton-models: GAN architectures on dfdx
//!
//! This crate will hold the convolution layers that dfdx 0.13 compiles out on stable Rust, the
//! FIDLE SHEEP1/SHEEP2 generators and critics, the DCGAN, MLP GAN and VAE architectures, and the
//! critics' tangent pass used by the WGAN-GP penalty.
//!
//! **Status: started.** [`ops`] holds CPU kernels as plain functions on NCHW slices, checked
//! against direct formulas and finite differences: conv2d and conv_transpose2d (forward and
//! backward; stride; valid, explicit and Keras "same" padding), fused activations (ReLU,
//! LeakyReLU with any slope, sigmoid, tanh), nearest upsampling. [`layers`] makes each a
//! differentiable dfdx operation on the CPU device; gradients through dfdx graphs match finite
//! differences and dfdx's own ops. [`modules::Conv2d`] is a dfdx module (compile-time shapes,
//! Keras initialization): `build`, `alloc_grads`, dfdx's optimizers and safetensors work on it.
//! [`sheep`] has FIDLE's SHEEP1 generator and discriminator built from them, with [`summary`]
//! tables. Still to come (models issue): sheep2-critic, DCGAN, MLP GAN and VAE, the critics'
//! tangent pass, safetensors error checks, CUDA kernels, and the PyTorch parity fixtures and
//! benchmark.

pub mod critic;
pub mod layers;
pub mod modules;
pub mod ops;
pub mod sheep;
pub mod summary;
pub mod weights;
