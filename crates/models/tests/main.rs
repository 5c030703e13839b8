//! The integration tests of mouton-models, one module per file, built as one binary (a binary
//! per file compiled the crate's generic code again for each). One file's tests:
//! `cargo test -p mouton-models --test models MODULE::`. The workspace test `tests/layout.rs`
//! checks that no file here is left out.

mod activations;
mod common;
mod conv2d;
mod conv_transpose2d;
mod cuda_on_cpu;
mod dcgan;
mod layers_autograd;
mod mlp;
mod modules;
mod sheep;
mod tangent;
mod torch_parity;
mod upsample;
mod weights;
