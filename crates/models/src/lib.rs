//! # mouton-models: GAN architectures on dfdx
//!
//! This crate will hold the convolution layers that dfdx 0.13 compiles out on stable Rust, the
//! FIDLE SHEEP1/SHEEP2 generators and critics, the DCGAN, MLP GAN and VAE architectures, and the
//! critics' tangent pass used by the WGAN-GP penalty.
//!
//! **Status: empty.** Its work is tracked in the project's models issue; nothing here is
//! implemented yet, so the crate exports nothing.
