//! # mouton-models: GAN architectures on dfdx
//!
//! This crate will hold the convolution layers that dfdx 0.13 compiles out on stable Rust, the
//! FIDLE SHEEP1/SHEEP2 generators and critics, the DCGAN, MLP GAN and VAE architectures, and the
//! critics' tangent pass used by the WGAN-GP penalty.
//!
//! **Status: started.** [`ops::conv2d`] has the CPU convolution kernels (forward and backward,
//! stride, explicit and Keras "same" padding) as plain functions on NCHW slices, checked against
//! a direct formula and finite differences. Their dfdx ops, the other layers and the
//! architectures are tracked in the project's models issue and not written yet.

pub mod ops;
