//! # mouton-data: Quick, Draw! drawings into images
//!
//! Reads Quick, Draw! data and renders it exactly the way Google made its `numpy_bitmap` files,
//! without any deep-learning dependency:
//!
//! - [`NdjsonReader`]: simplified and raw ndjson, streamed line by line, gzip detected by magic
//!   bytes; every error names the file and line.
//! - [`Rasterizer`] / [`rasterize`]: Google's `vector_to_raster` recipe (centred, pen 16 and
//!   padding 16 in the 256-space, round caps and joins, antialiased, white on black) at any size.
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
#[cfg(feature = "fetch")]
mod fetch;
mod formats;
mod grid;
mod info;
mod ndjson;
mod raster;
mod raster_skia;
mod simplify;
mod source;
mod synth;

pub use batch::{rasterize_file, Filter, Summary};
pub use binary::BinaryReader;
pub use bitmap::{read_npy_bitmaps, read_raw_bitmaps, write_atomically, write_npy_u8, Bitmaps};
pub use cache::{load_images_cached, CacheStatus};
pub use dataset::{Batch, Batches, Dataset, Scale};
pub use drawing::{Drawing, Meta, Strokes, Timestamp};
pub use error::{DataError, Location};
#[cfg(feature = "fetch")]
pub use fetch::{fetch, remote_file, Fetched, RemoteFormat, BASE_URL_ENV, DEFAULT_BASE_URL};
pub use formats::{detect_format, load_images, Format};
pub use grid::{tile, write_png_gray};
pub use info::{file_info, FileInfo};
pub use ndjson::{
    parse_ndjson_line, write_simplified_line, NdjsonKind, NdjsonReader, RAW_COORD_LIMIT,
};
pub use raster::{rasterize, RasterOptions, Rasterizer, MAX_SIZE};
pub use raster_skia::SkiaRasterizer;
pub use simplify::{simplify, Simplifier, RDP_EPSILON};
pub use source::open;
pub use synth::{synth_flock, synth_sheep, SYNTH_COUNTRY, SYNTH_NOTICE};
