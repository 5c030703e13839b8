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
//! differences and dfdx's own ops. Still to come (models issue): the architectures and their
//! summaries, dropout, batch norm use, the critics' tangent pass, safetensors checks, CUDA
//! kernels, and the PyTorch parity fixtures and benchmark.

pub mod layers;
pub mod ops;
