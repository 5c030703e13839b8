//! # mouton-losses: GAN loss maths on dfdx tensors
//!
//! This crate will hold the discriminator/generator BCE losses (saturating and non-saturating),
//! LSGAN, hinge, WGAN with weight clipping, the WGAN-GP gradient penalty without double backward,
//! and the VAE losses.
//!
//! **Status: empty.** Its work is tracked in the project's losses issue; nothing here is
//! implemented yet, so the crate exports nothing.
