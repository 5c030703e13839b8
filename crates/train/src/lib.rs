//! # mouton-train: training loops for mouton's GANs
//!
//! This crate will run GAN, LSGAN, hinge, WGAN, WGAN-GP and VAE training on dfdx's CPU and CUDA
//! devices, with resumable checkpoints, metrics and sample grids.
//!
//! **Status: empty.** Its work is tracked in the project's training issue; nothing here is
//! implemented yet, so the crate exports nothing.
