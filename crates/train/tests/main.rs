//! The integration tests of mouton-train, one module per file, built as one binary (a binary
//! per file compiled the crate's generic code again for each). One file's tests:
//! `cargo test -p mouton-train --test train MODULE::`. The workspace test `tests/layout.rs`
//! checks that no file here is left out.

mod ema;
mod encoding;
mod metrics_file;
mod optim;
mod training;
