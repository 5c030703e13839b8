//! # mouton-data: Quick, Draw! drawings into images
//!
//! This crate will read every Quick, Draw! format (simplified and raw ndjson, Google's binary
//! `.bin`, numpy bitmaps), reproduce Google's simplification and its 28x28 rasterization, and
//! serve training batches, without depending on a deep-learning engine.
//!
//! **Status: empty.** Its work is tracked in the project's data issue; nothing here is
//! implemented yet, so the crate exports nothing.
