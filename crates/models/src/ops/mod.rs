//! CPU kernels of the layers dfdx 0.13 compiles out on stable Rust, as plain functions on
//! row-major slices, so they can be tested against direct formulas and reused by the dfdx ops.

pub mod activation;
pub mod batch_norm;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod dense;
mod matmul;
pub(crate) mod scratch;
pub mod upsample;

pub use matmul::Real;
