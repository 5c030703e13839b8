//! What a VAE run's encoder makes of images, as FIDLE's VAE notebooks show it: where images
//! land in the latent space ([`encode_from_run`], for a scatter of several categories), and
//! how well the decoder gives them back ([`reconstruct_from_run`]: each image decoded from its
//! latent mean, with its reconstruction cross-entropy and KL term, the two halves of the loss
//! the VAE trained on).
//!
//! Only the VAE has an encoder: a GAN run is refused with an error that says so.

use std::path::Path;

use dfdx::prelude::*;
use mouton_models::layers::activation;
use mouton_models::ops::activation::Activation;
use mouton_models::vae::Vae;

use crate::checkpoint::{load_generator, Loaded, Pick, Weights};
use crate::config::{GeneratorArch, TrainConfig};
use crate::TrainError;

/// The VAE's image side.
const SIDE: usize = 28;

/// Images per forward pass: memory stays small however many images are encoded.
const CHUNK: usize = 256;

/// The encoder's output for `n` images, row-major (N, latent).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    /// The latent length.
    pub latent: usize,
    /// Means of the approximate posteriors.
    pub mu: Vec<f32>,
    /// Log-variances of the approximate posteriors.
    pub logvar: Vec<f32>,
}

impl Encoding {
    /// The number of encoded images.
    pub fn len(&self) -> usize {
        self.mu.len() / self.latent.max(1)
    }

    /// Whether no image was encoded.
    pub fn is_empty(&self) -> bool {
        self.mu.is_empty()
    }

    /// The mean and the (population) standard deviation of the latent means, per dimension.
    ///
    /// ```
    /// use mouton_train::encoding::Encoding;
    /// let e = Encoding { latent: 2, mu: vec![1.0, 0.0, 3.0, 0.0], logvar: vec![0.0; 4] };
    /// assert_eq!(e.centre_and_spread(), (vec![2.0, 0.0], vec![1.0, 0.0]));
    /// ```
    pub fn centre_and_spread(&self) -> (Vec<f64>, Vec<f64>) {
        let k = self.latent.max(1);
        let n = self.len().max(1) as f64;
        let mut mean = vec![0f64; k];
        for row in self.mu.chunks(k) {
            row.iter()
                .zip(&mut mean)
                .for_each(|(&v, m)| *m += v as f64 / n);
        }
        let mut var = vec![0f64; k];
        for row in self.mu.chunks(k) {
            for ((&v, m), s) in row.iter().zip(&mean).zip(&mut var) {
                *s += (v as f64 - m).powi(2) / n;
            }
        }
        (mean, var.iter().map(|s| s.sqrt()).collect())
    }
}

/// Images given back by the decoder, with what each one costs in the VAE's loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// Where the images landed.
    pub encoding: Encoding,
    /// The decoder's images (sigmoid of its logits) for the latent means, (N, 784) in [0, 1].
    pub images: Vec<f32>,
    /// Per image: binary cross-entropy of the input pixels against the decoder's
    /// probabilities at the latent mean, summed over pixels, in nats.
    pub bce: Vec<f64>,
    /// Per image: `KL(N(mu, sigma^2) || N(0, 1))` summed over latent dimensions, in nats (the
    /// exact divergence, with the 1/2, whichever form the run trained with).
    pub kl: Vec<f64>,
}

/// The configuration of a VAE run; any other run is an error naming the directory.
fn vae_config(run_dir: &Path) -> Result<TrainConfig, TrainError> {
    let cfg = TrainConfig::load(&run_dir.join("config.toml"))?;
    if cfg.generator != GeneratorArch::Vae {
        return Err(TrainError::RunDir(format!(
            "{}: its generator is not a VAE, and only a VAE has an encoder (train one with \
             mouton train --preset vae)",
            run_dir.display()
        )));
    }
    Ok(cfg)
}

/// Loads the VAE of the checkpoint `pick` (its moving average by default, as
/// [`load_generator`] does).
fn load_vae<const L: usize>(
    cfg: &TrainConfig,
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
) -> Result<(Model<L>, Loaded), TrainError> {
    let mut vae: Model<L> = crate::trainer::build(cfg, 0);
    let loaded = load_generator(run_dir, pick, weights, &mut vae)?;
    Ok((vae, loaded))
}

/// Checks that `images` holds whole 28x28 images and says how many.
fn count(images: &[f32]) -> Result<usize, TrainError> {
    if images.is_empty() || !images.len().is_multiple_of(SIDE * SIDE) {
        return Err(TrainError::NoData(format!(
            "the VAE encodes 28x28 images: {} pixel values are not a whole number of them (or \
             none)",
            images.len()
        )));
    }
    Ok(images.len() / (SIDE * SIDE))
}

/// Encodes `images` ((N, 784) in [0, 1]) with the encoder of the checkpoint `pick` of the VAE
/// run in `run_dir`.
///
/// ```
/// use mouton_train::checkpoint::{Pick, Weights};
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::encoding::encode_from_run;
/// use mouton_train::trainer::{train, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// let run = dir.path().join("vae");
/// let mut cfg = TrainConfig::preset(Preset::Vae);
/// (cfg.synthetic_count, cfg.max_steps) = (80, Some(1));
/// let data = mouton_train::data::load(&cfg)?;
/// train(&cfg, &data, &run, &RunOptions::default(), &mut |_| {})?;
/// let images = &data.train.as_slice()[..5 * 784];
/// let (enc, loaded) = encode_from_run(&run, Pick::Newest, Weights::Average, images)?;
/// assert_eq!((enc.len(), enc.latent, enc.logvar.len(), loaded.step), (5, 2, 10, 1));
/// // Encoding is deterministic (the latent mean, not a sample).
/// assert_eq!(enc, encode_from_run(&run, Pick::Newest, Weights::Average, images)?.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_from_run(
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
    images: &[f32],
) -> Result<(Encoding, Loaded), TrainError> {
    count(images)?;
    let cfg = vae_config(run_dir)?;
    crate::with_vae_latent!(cfg.vae_latent(), L => encode_with::<L>(&cfg, run_dir, pick, weights, images))
}

fn encode_with<const L: usize>(
    cfg: &TrainConfig,
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
    images: &[f32],
) -> Result<(Encoding, Loaded), TrainError> {
    let (vae, loaded) = load_vae::<L>(cfg, run_dir, pick, weights)?;
    let mut enc = Encoding {
        latent: L,
        mu: Vec::new(),
        logvar: Vec::new(),
    };
    for_chunks(&vae, images, &mut |_, mu, logvar| {
        enc.mu.extend(mu.as_vec());
        enc.logvar.extend(logvar.as_vec());
        Ok(())
    })?;
    Ok((enc, loaded))
}

/// Encodes `images` ((N, 784) in [0, 1]) with the VAE of the checkpoint `pick` of the run in
/// `run_dir` and decodes each latent mean: the reconstructions and their cost per image.
///
/// ```
/// use mouton_train::checkpoint::{Pick, Weights};
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::encoding::{encode_from_run, reconstruct_from_run};
/// use mouton_train::trainer::{train, RunOptions};
/// # let dir = tempfile::tempdir()?;
/// let run = dir.path().join("vae");
/// let mut cfg = TrainConfig::preset(Preset::Vae);
/// (cfg.synthetic_count, cfg.max_steps) = (80, Some(1));
/// let data = mouton_train::data::load(&cfg)?;
/// train(&cfg, &data, &run, &RunOptions::default(), &mut |_| {})?;
/// let images = &data.train.as_slice()[..3 * 784];
/// let (r, _) = reconstruct_from_run(&run, Pick::Newest, Weights::Average, images)?;
/// assert_eq!((r.images.len(), r.bce.len(), r.kl.len()), (3 * 784, 3, 3));
/// assert!(r.images.iter().all(|p| (0.0..=1.0).contains(p)));
/// assert!(r.bce.iter().chain(&r.kl).all(|&v| v.is_finite() && v >= 0.0));
/// assert_eq!(r.encoding, encode_from_run(&run, Pick::Newest, Weights::Average, images)?.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn reconstruct_from_run(
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
    images: &[f32],
) -> Result<(Reconstruction, Loaded), TrainError> {
    count(images)?;
    let cfg = vae_config(run_dir)?;
    crate::with_vae_latent!(cfg.vae_latent(), L => reconstruct_with::<L>(&cfg, run_dir, pick, weights, images))
}

fn reconstruct_with<const L: usize>(
    cfg: &TrainConfig,
    run_dir: &Path,
    pick: Pick,
    weights: Weights,
    images: &[f32],
) -> Result<(Reconstruction, Loaded), TrainError> {
    let (vae, loaded) = load_vae::<L>(cfg, run_dir, pick, weights)?;
    let mut r = Reconstruction {
        encoding: Encoding {
            latent: L,
            mu: Vec::new(),
            logvar: Vec::new(),
        },
        images: Vec::with_capacity(images.len()),
        bce: Vec::new(),
        kl: Vec::new(),
    };
    let mut done = 0;
    for_chunks(&vae, images, &mut |vae, mu, logvar| {
        let (mu_v, lv_v) = (mu.as_vec(), logvar.as_vec());
        let logits = vae.decode(mu)?;
        // The models' own sigmoid: the images `mouton sample` would draw from these points.
        r.images
            .extend(activation(logits.clone(), Activation::Sigmoid).as_vec());
        let logits = logits.as_vec();
        let n = mu_v.len() / L;
        let input = &images[done * SIDE * SIDE..(done + n) * SIDE * SIDE];
        for (x, l) in input.chunks(SIDE * SIDE).zip(logits.chunks(SIDE * SIDE)) {
            r.bce.push(bce_with_logits(x, l));
        }
        for (m, v) in mu_v.chunks(L).zip(lv_v.chunks(L)) {
            r.kl.push(kl_to_standard_normal(m, v));
        }
        r.encoding.mu.extend(mu_v);
        r.encoding.logvar.extend(lv_v);
        done += n;
        Ok(())
    })?;
    Ok((r, loaded))
}

type LatentRows = Tensor<(usize, usize), f32, Cpu>;
type Model<const L: usize> = Vae<L, f32, Cpu>;

/// Runs the encoder over `images` a chunk at a time, handing each chunk's (mu, logvar) on.
fn for_chunks<const L: usize>(
    vae: &Model<L>,
    images: &[f32],
    each: &mut dyn FnMut(&Model<L>, LatentRows, LatentRows) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let dev = Cpu::default();
    for chunk in images.chunks(CHUNK * SIDE * SIDE) {
        let n = chunk.len() / (SIDE * SIDE);
        let x = dev.tensor_from_vec(chunk.to_vec(), (n, 1usize, SIDE, SIDE));
        let (mu, logvar) = vae.encode(x)?;
        each(vae, mu, logvar)?;
    }
    Ok(())
}

/// `sum(-x ln p - (1 - x) ln(1 - p))` for `p = sigmoid(l)`, in the overflow-free form
/// `max(l, 0) - x l + ln(1 + exp(-|l|))`, in f64.
///
/// ```
/// use mouton_train::encoding::bce_with_logits;
/// // p = sigmoid(0) = 1/2 for any target: ln 2 per pixel.
/// assert!((bce_with_logits(&[0.0, 1.0, 0.3], &[0.0; 3]) - 3.0 * 2f64.ln()).abs() < 1e-12);
/// // A confident, right logit costs almost nothing; a wrong one about |l|.
/// assert!(bce_with_logits(&[1.0], &[40.0]) < 1e-15);
/// assert!((bce_with_logits(&[0.0], &[40.0]) - 40.0).abs() < 1e-12);
/// ```
pub fn bce_with_logits(target: &[f32], logits: &[f32]) -> f64 {
    target
        .iter()
        .zip(logits)
        .map(|(&x, &l)| {
            let (x, l) = (x as f64, l as f64);
            l.max(0.0) - x * l + (-l.abs()).exp().ln_1p()
        })
        .sum()
}

/// `KL(N(mu, exp(logvar)) || N(0, 1)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar))`, in f64.
///
/// ```
/// use mouton_train::encoding::kl_to_standard_normal;
/// assert_eq!(kl_to_standard_normal(&[0.0, 0.0], &[0.0, 0.0]), 0.0); // the prior itself
/// // A unit shift of the mean costs 1/2 nat.
/// assert!((kl_to_standard_normal(&[1.0], &[0.0]) - 0.5).abs() < 1e-12);
/// ```
pub fn kl_to_standard_normal(mu: &[f32], logvar: &[f32]) -> f64 {
    -0.5 * mu
        .iter()
        .zip(logvar)
        .map(|(&m, &v)| {
            let (m, v) = (m as f64, v as f64);
            1.0 + v - m * m - v.exp()
        })
        .sum::<f64>()
}

/// Writes encodings as CSV at `path` (atomically): a header `source,index,mu0,...,logvar0,...`,
/// then one row per image, `index` counting from 0 within its source (the `csv` crate quotes
/// sources that hold commas, quotes or line breaks).
///
/// ```
/// use mouton_train::encoding::{write_csv, Encoding};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("latent.csv");
/// let e = Encoding { latent: 2, mu: vec![0.5, -1.0, 2.0, 0.0], logvar: vec![-0.25, 0.0, 1.0, -2.0] };
/// write_csv(&path, &[("sheep.npy", &e), ("a,b", &e)])?;
/// let text = std::fs::read_to_string(&path)?;
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(lines[0], "source,index,mu0,mu1,logvar0,logvar1");
/// assert_eq!(lines[1], "sheep.npy,0,0.5,-1,-0.25,0");
/// assert_eq!(lines[4], "\"a,b\",1,2,0,1,-2");
/// assert_eq!(lines.len(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_csv(path: &Path, groups: &[(&str, &Encoding)]) -> Result<(), TrainError> {
    let latent = groups.first().map_or(2, |g| g.1.latent);
    if groups.iter().any(|g| g.1.latent != latent) {
        return Err(TrainError::Metric(format!(
            "{}: encodings of different latent lengths",
            path.display()
        )));
    }
    mouton_data::write_atomically(path, |f| {
        let mut w = csv::Writer::from_writer(f);
        let mu = (0..latent).map(|i| format!("mu{i}"));
        let lv = (0..latent).map(|i| format!("logvar{i}"));
        let header: Vec<String> = ["source".into(), "index".into()]
            .into_iter()
            .chain(mu)
            .chain(lv)
            .collect();
        w.write_record(&header)?;
        for (source, e) in groups {
            let rows = e.mu.chunks(latent).zip(e.logvar.chunks(latent));
            for (i, (m, v)) in rows.enumerate() {
                // Rust prints the shortest text that reads back as the same f32.
                let values = m.iter().chain(v).map(|x| x.to_string());
                let record: Vec<String> = [source.to_string(), i.to_string()]
                    .into_iter()
                    .chain(values)
                    .collect();
                w.write_record(&record)?;
            }
        }
        w.flush()
    })?;
    Ok(())
}

/// Lays `originals` and their `reconstructions` (both (N, P)) out for a grid of `cols`
/// columns: a row of originals, then the row of their reconstructions below it, and so on;
/// the last pair of rows is padded with blank (zero) images.
///
/// ```
/// use mouton_train::encoding::paired_rows;
/// let (a, b) = ([1.0f32, 2.0, 3.0], [-1.0f32, -2.0, -3.0]); // three one-pixel images
/// assert_eq!(paired_rows(&a, &b, 1, 2), [1.0, 2.0, -1.0, -2.0, 3.0, 0.0, -3.0, 0.0]);
/// ```
pub fn paired_rows(
    originals: &[f32],
    reconstructions: &[f32],
    pixels: usize,
    cols: usize,
) -> Vec<f32> {
    let (pixels, cols) = (pixels.max(1), cols.max(1));
    let row = pixels * cols;
    let mut out = Vec::with_capacity(2 * originals.len().div_ceil(row) * row);
    for (o, r) in originals.chunks(row).zip(reconstructions.chunks(row)) {
        for part in [o, r] {
            out.extend_from_slice(part);
            out.resize(out.len() + row - part.len(), 0.0);
        }
    }
    out
}
