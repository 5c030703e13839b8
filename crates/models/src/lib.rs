//! # mouton-models: GAN architectures on dfdx
//!
//! This crate will hold the convolution layers that dfdx 0.13 compiles out on stable Rust, the
//! FIDLE SHEEP1/SHEEP2 generators and critics, the DCGAN, MLP GAN and VAE architectures, and the
//! critics' tangent pass used by the WGAN-GP penalty.
//!
//! **Status.** [`ops`] holds CPU kernels as plain functions on NCHW slices, checked against
//! direct formulas and finite differences: conv2d and conv_transpose2d (forward and backward;
//! stride; valid, explicit and Keras "same" padding), fused activations (ReLU, LeakyReLU with
//! any slope, sigmoid, tanh), nearest upsampling. [`layers`] makes each a differentiable dfdx
//! operation on the CPU device. [`modules`] has Conv2d and Dense as dfdx modules (Keras
//! initialization): `build`, `alloc_grads`, optimizers and safetensors work on them. [`sheep`]
//! has FIDLE's SHEEP1 generator and discriminator and the SHEEP2 critic, with [`summary`]
//! tables. [`critic`] defines the critics' tangent pass (checked against finite differences
//! and `torch.func.jvp`), which mouton-losses uses for the exact WGAN-GP gradient. [`weights`]
//! saves and loads named tensors with checks; the conv ops match PyTorch (values and all
//! gradients). [`mlp`] has FIDLE's fully connected GAN (with [`modules::BatchNorm1d`]), [`vae`]
//! a small convolutional VAE, and [`generator::Generator`] is what the training loop asks of a
//! generator; [`dcgan`] has pytorch/examples-style DCGANs for 28, 32 and 64 px. Every model is
//! generic over the device through [`layers::Layers`]: the CPU runs everything; with the `cuda`
//! feature, dfdx's CUDA device runs conv2d, upsampling, activations and the tangent pass (not
//! yet the transposed convolution and batch normalization).

pub mod critic;
pub mod dcgan;
pub mod generator;
pub mod layers;
pub mod mlp;
pub mod modules;
pub mod ops;
pub mod sheep;
pub mod summary;
pub mod vae;
pub mod weights;
