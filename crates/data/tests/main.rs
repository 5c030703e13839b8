//! mouton-data's integration tests as one binary, a module per file: one binary per file
//! linked the crate and compiled its generic code once per file. One file's tests:
//! `cargo test -p mouton-data --test data MODULE::`. `tests/layout.rs` (workspace root) checks
//! that every file here is declared below.

mod common;
mod dataset_cache;
mod errors;
mod golden_raster;
mod golden_simplify;
mod ndjson_real_lines;
mod no_panic;
mod synth;
mod whole_files;
