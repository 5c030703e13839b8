//! mouton-models's integration tests as one binary, a module per file: one binary per file
//! linked the crate and compiled its generic code once per file. One file's tests:
//! `cargo test -p mouton-models --test models MODULE::`. `tests/layout.rs` (workspace root) checks
//! that every file here is declared below.

mod activations;
mod common;
mod conv2d;
mod conv_transpose2d;
mod dcgan;
mod layers_autograd;
mod mlp;
mod modules;
mod sheep;
mod tangent;
mod torch_parity;
mod upsample;
mod weights;
