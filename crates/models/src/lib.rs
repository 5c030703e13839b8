//! # mouton-models: GAN architectures on dfdx
//!
//! This crate will hold the convolution layers that dfdx 0.13 compiles out on stable Rust, the
//! FIDLE SHEEP1/SHEEP2 generators and critics, the DCGAN, MLP GAN and VAE architectures, and the
//! critics' tangent pass used by the WGAN-GP penalty.
//!
//! **Status: started.** [`ops::conv2d`] and [`ops::conv_transpose2d`] hold the CPU kernels
//! (forward and backward; stride; valid, explicit and Keras "same" padding) as plain functions on
//! NCHW slices, checked against direct formulas and finite differences. [`layers::conv2d`] makes
//! conv2d a differentiable dfdx operation on the CPU device (its gradients through a dfdx graph
//! match finite differences). Still to come (models issue): the transposed op on dfdx, fused
//! activations, upsampling, the architectures, the tangent pass, CUDA kernels.

pub mod layers;
pub mod ops;
