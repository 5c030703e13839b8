//! The integration tests of mouton-emd, one module per file, built as one binary (a binary
//! per file compiled the crate's generic code again for each). One file's tests:
//! `cargo test -p mouton-emd --test emd MODULE::`. The workspace test `tests/layout.rs`
//! checks that no file here is left out.

mod parity;
mod properties;
