//! # mouton-data: Quick, Draw! drawings into images
//!
//! Reads Quick, Draw! data and renders it the way Google made its `numpy_bitmap` files, without
//! any deep-learning dependency:
//!
//! - readers, all streaming and gzip-aware (magic bytes): [`NdjsonReader`] (simplified and raw
//!   ndjson), [`BinaryReader`] (Google's `.bin`), [`read_npy_bitmaps`], [`read_raw_bitmaps`];
//!   every error is a [`DataError`] naming the file and line or byte offset;
//! - [`Rasterizer`]: Google's `vector_to_raster` recipe modelled on cairo (mean error 0.1 grey
//!   level against Google's bitmaps), any size; [`SkiaRasterizer`] for comparison;
//! - [`simplify`]: Google's simplification of raw drawings (align, scale to 255, resample at
//!   1 px, RDP 2.0);
//! - [`rasterize_file`] / [`load_images`]: whole files on all cores, with [`Filter`]s;
//!   [`load_images_cached`] skips the work the second time;
//! - [`Dataset`]: f32 (N, 1, H, W) in [0, 1] or [-1, 1], seeded split and batches;
//! - [`synth_sheep`] / [`synth_flock`] / [`synth_pieces`]: seeded synthetic sheep, for running offline;
//! - `fetch` (feature `fetch`): resumable download from Google's public bucket.
//!
//! ```
//! use mouton_data::{parse_ndjson_line, rasterize, RasterOptions};
//! let line = br#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[10,200],[128,128]]]}"#;
//! let (drawing, _) = parse_ndjson_line(line, "in.ndjson".as_ref(), 1)?;
//! let img = rasterize(&drawing.strokes, &RasterOptions::default()).unwrap();
//! assert_eq!(img.len(), 28 * 28);
//! # Ok::<(), mouton_data::DataError>(())
//! ```
//!
//! Quick, Draw! data is Google's, under CC BY 4.0: credit "Quick, Draw! dataset, Google
//! (CC BY 4.0)" when you redistribute it.

mod batch;
mod binary;
mod bitmap;
mod cache;
mod dataset;
mod drawing;
mod error;
mod fast_line;
#[cfg(feature = "fetch")]
mod fetch;
mod formats;
mod grid;
mod info;
mod lanes;
mod ndjson;
mod raster;
mod raster_skia;
mod simplify;
mod source;
mod synth;

pub use batch::{rasterize_file, rasterize_file_with, Filter, Summary};
pub use binary::BinaryReader;
pub use bitmap::{
    read_npy_bitmaps, read_raw_bitmaps, write_atomically, write_npy_u8, Bitmaps, NpyRowWriter,
};
pub use cache::{load_images_cached, CacheStatus};
pub use dataset::{Batch, Batches, Dataset, Scale};
pub use drawing::{Drawing, Meta, Strokes, Timestamp};
pub use error::{DataError, Location};
#[cfg(feature = "fetch")]
pub use fetch::{fetch, remote_file, Fetched, RemoteFormat, BASE_URL_ENV, DEFAULT_BASE_URL};
pub use formats::{detect_format, load_images, rasterize_to_npy, Format};
pub use grid::{tile, write_png_gray};
pub use info::{file_info, FileInfo};
pub use ndjson::{
    parse_ndjson_line, write_simplified_line, NdjsonKind, NdjsonReader, RAW_COORD_LIMIT,
};
pub use raster::{rasterize, RasterOptions, Rasterizer, MAX_SIZE};
pub use raster_skia::SkiaRasterizer;
pub use simplify::{simplify, Simplifier, RDP_EPSILON};
pub use source::open;
pub use synth::{synth_flock, synth_pieces, synth_sheep, SYNTH_COUNTRY, SYNTH_NOTICE};
