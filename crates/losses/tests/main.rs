//! The integration tests of mouton-losses, one module per file, built as one binary (a binary
//! per file compiled the crate's generic code again for each). One file's tests:
//! `cargo test -p mouton-losses --test losses MODULE::`. The workspace test `tests/layout.rs`
//! checks that no file here is left out.

mod clipping;
mod properties;
mod vae_training;
mod wgan_gp_torch;
