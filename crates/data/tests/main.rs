//! The integration tests of mouton-data, one module per file, built as one binary (a binary
//! per file compiled the crate's generic code again for each). One file's tests:
//! `cargo test -p mouton-data --test data MODULE::`. The workspace test `tests/layout.rs`
//! checks that no file here is left out.

mod common;
mod dataset_cache;
mod errors;
mod golden_raster;
mod golden_simplify;
mod ndjson_real_lines;
mod no_panic;
mod synth;
mod whole_files;
