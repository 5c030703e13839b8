//! mouton-train's integration tests as one binary, a module per file: one binary per file
//! linked the crate and compiled its generic code once per file. One file's tests:
//! `cargo test -p mouton-train --test train MODULE::`. `tests/layout.rs` (workspace root) checks
//! that every file here is declared below.

mod optim;
mod training;
