//! The training images: a Quick Draw file of any format, or synthetic sheep when none is
//! given, split into training and held-out validation images.

use mouton_data::{Bitmaps, Dataset, Filter, Format, RasterOptions, Scale};
use rayon::prelude::*;

use crate::config::TrainConfig;
use crate::rng::{derive, Stream};
use crate::TrainError;

/// Images for a run.
#[derive(Debug, Clone)]
pub struct TrainingData {
    /// Training images, (N, 1, side, side) in [0, 1] (side: the config's `image_size`).
    pub train: Dataset,
    /// Held-out images for the per-epoch metric.
    pub validation: Dataset,
    /// Where they came from, for messages.
    pub source: String,
    /// Whether they are mouton's synthetic stand-ins.
    pub synthetic: bool,
}

/// Parses a format name (`ndjson`, `binary`, `npy`, `bitmap28`).
///
/// ```
/// use mouton_train::data::parse_format;
/// assert_eq!(parse_format("bitmap28")?, mouton_data::Format::Bitmap28);
/// let err = parse_format("png").unwrap_err().to_string();
/// assert!(err.contains("unknown format `png`"), "{err}");
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn parse_format(name: &str) -> Result<Format, TrainError> {
    Ok(match name {
        "ndjson" => Format::Ndjson,
        "binary" => Format::Binary,
        "npy" => Format::Npy,
        "bitmap28" => Format::Bitmap28,
        other => {
            return Err(TrainError::Config(format!(
                "data_format: unknown format `{other}` (ndjson, binary, npy, bitmap28)"
            )))
        }
    })
}

/// `n` synthetic sheep rendered at `side` x `side` as Google renders drawings.
///
/// ```
/// use mouton_train::data::synthetic_bitmaps;
/// let b = synthetic_bitmaps(3, 7, 28);
/// assert_eq!((b.len(), b.side), (3, 28));
/// assert!(b.image(0).iter().any(|&v| v == 255)); // ink
/// assert_eq!(b, synthetic_bitmaps(3, 7, 28)); // seeded
/// assert_ne!(b, synthetic_bitmaps(3, 8, 28));
/// ```
pub fn synthetic_bitmaps(n: usize, seed: u64, side: usize) -> Bitmaps {
    let opts = RasterOptions {
        size: side as u32,
        ..RasterOptions::default()
    };
    let side = opts.size as usize;
    // A piece at a time: the drawings of a whole large flock would outweigh its pixels.
    let mut data = Vec::with_capacity(n * side * side);
    for piece in mouton_data::synth_pieces(n, seed) {
        let pixels: Vec<u8> = piece
            .par_iter()
            .flat_map_iter(|d| {
                mouton_data::rasterize(&d.strokes, &opts).unwrap_or_else(|| vec![0; side * side])
            })
            .collect();
        data.extend(pixels);
    }
    Bitmaps { side, data }
}

/// Reads `side` x `side` images from any Quick Draw file (drawings are rasterized as Google
/// does, at that size), as f32 in [0, 1]. `format`: a format name, or `None` to detect it.
/// Bitmap files hold 28x28 images only.
///
/// ```
/// use mouton_train::data::load_file;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("two.npy");
/// mouton_data::write_npy_u8(&path, &[255u8; 2 * 784], &[2, 784])?;
/// let images = load_file(&path, None, 28)?; // format detected
/// assert_eq!(images.len(), 2);
/// // Bitmaps cannot be re-rendered at another size; the error says so.
/// let err = load_file(&path, None, 32).unwrap_err().to_string();
/// assert!(err.contains("28x28 bitmaps; they cannot be rendered at 32x32"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_file(
    path: &std::path::Path,
    format: Option<&str>,
    side: usize,
) -> Result<Dataset, TrainError> {
    load_file_filtered(path, format, side, &Filter::default())
}

/// [`load_file`] keeping only the images `filter` keeps (`first` stops reading early; with
/// `random`, a seeded sample in file order).
///
/// ```
/// use mouton_data::Filter;
/// use mouton_train::data::{load_file, load_file_filtered};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ten.npy");
/// let pixels: Vec<u8> = (0..10u8).flat_map(|i| [i; 784]).collect();
/// mouton_data::write_npy_u8(&path, &pixels, &[10, 784])?;
/// let first = Filter { first: Some(3), ..Filter::default() };
/// let three = load_file_filtered(&path, None, 28, &first)?;
/// assert_eq!(three.as_slice(), &load_file(&path, None, 28)?.as_slice()[..3 * 784]);
/// let some = Filter { random: Some((4, 7)), ..Filter::default() };
/// assert_eq!(load_file_filtered(&path, None, 28, &some)?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_file_filtered(
    path: &std::path::Path,
    format: Option<&str>,
    side: usize,
    filter: &Filter,
) -> Result<Dataset, TrainError> {
    let format = match format {
        Some(f) => parse_format(f)?,
        None => mouton_data::detect_format(path)?,
    };
    let (b, _) = mouton_data::load_images(
        path,
        format,
        &RasterOptions {
            size: side as u32,
            ..RasterOptions::default()
        },
        filter,
        false,
    )?;
    if b.side != side {
        return Err(TrainError::NoData(format!(
            "{}: images are {1}x{1}, but this run takes {side}x{side} (bitmaps cannot be \
             re-rendered: give drawings, ndjson or binary, for other sizes)",
            path.display(),
            b.side
        )));
    }
    Ok(Dataset::from_bitmaps(&b, Scale::ZeroOne))
}

/// Loads (or draws) the images of `cfg` and splits off the validation set.
///
/// ```
/// use mouton_train::config::{Preset, TrainConfig};
/// let mut cfg = TrainConfig::preset(Preset::Sheep1); // no `data`: synthetic sheep
/// cfg.synthetic_count = 100;
/// let data = mouton_train::data::load(&cfg)?;
/// assert!(data.synthetic && data.source == "100 synthetic sheep");
/// assert_eq!((data.train.len(), data.validation.len()), (90, 10)); // 10 % held out
/// // Too few images for one step (batch_size x n_critic) is an error, not an empty run.
/// cfg.synthetic_count = 20;
/// assert!(mouton_train::data::load(&cfg).is_err());
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn load(cfg: &TrainConfig) -> Result<TrainingData, TrainError> {
    let (all, source, synthetic) = match &cfg.data {
        Some(path) => (
            load_file(path, cfg.data_format.as_deref(), cfg.image_size)?,
            path.display().to_string(),
            false,
        ),
        None => (
            Dataset::from_bitmaps(
                &synthetic_bitmaps(
                    cfg.synthetic_count,
                    derive(cfg.seed, Stream::Synthetic, 0, 0),
                    cfg.image_size,
                ),
                Scale::ZeroOne,
            ),
            format!("{} synthetic sheep", cfg.synthetic_count),
            true,
        ),
    };
    let (train, validation) = all.split(
        cfg.validation_fraction,
        derive(cfg.seed, Stream::Split, 0, 0),
    );
    let need = cfg.batch_size.saturating_mul(cfg.n_critic);
    if train.len() < need {
        return Err(TrainError::NoData(format!(
            "{source}: {} training image(s), but one step needs batch_size x n_critic = {need}",
            train.len()
        )));
    }
    Ok(TrainingData {
        train,
        validation,
        source,
        synthetic,
    })
}
