//! # mouton-train: training GANs on dfdx, resumable and measured
//!
//! FIDLE's notebooks go: parameters, data, networks, training, history, new sheep. This crate
//! does each step as a library call that the `mouton` CLI wraps:
//! - [`config`]: presets (`sheep1`, `sheep2`, `vae`), per-loss defaults, overrides, `config.toml`;
//! - [`data`]: the training images (any Quick Draw format, or synthetic sheep);
//! - [`optim`]: Adam and RMSprop with checkpointable state;
//! - [`trainer`]: the loop for GAN, non-saturating GAN, LSGAN, hinge, WGAN and WGAN-GP with
//!   any generator/critic pair of mouton-models, and for the VAE; [`ema`]: an optional
//!   moving average of the generator's weights, which then draws the samples;
//! - [`checkpoint`], [`metrics`]: the run directory's files, all written atomically;
//!   [`run_lock`]: one training at a time per run directory; [`tensorboard`]: the same
//!   metrics and sample grids as TensorBoard event files;
//! - [`sampling`], [`eval`], [`plot`]: drawing new sheep, latent interpolation, quality
//!   metrics against real drawings, loss curves and latent-space scatters; [`encoding`]: a
//!   VAE's encodings and reconstructions of given images; [`pca`]: the principal plane that
//!   draws a latent space of more than two dimensions.
//!
//! Everything random derives from the run's seed ([`rng`]), so the same seed gives the same
//! run on the CPU, and a resumed run continues exactly as an uninterrupted one would.
//!
//! A run directory holds `config.toml`, `metrics.jsonl`, `samples/epoch_NNN.png`, `loss.png`
//! and `checkpoints/step_NNNNNNNNN.safetensors` (generator, critic, both optimizers' state,
//! and the generator's moving average with `ema`),
//! and with `tensorboard = true` `events.out.tfevents.*` files.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod ema;
pub mod encoding;
pub mod eval;
pub mod metrics;
pub mod optim;
pub mod pca;
pub mod plot;
pub mod rng;
pub mod run_lock;
pub mod sampling;
pub mod tensorboard;
pub mod trainer;

use std::path::PathBuf;

/// Errors of training and of the tools around it.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value or file is invalid.
    #[error("config: {0}")]
    Config(String),
    /// The training data could not be read.
    #[error(transparent)]
    Data(#[from] mouton_data::DataError),
    /// Too few images, or none.
    #[error("data: {0}")]
    NoData(String),
    /// A weights or checkpoint file is unreadable or does not fit.
    #[error(transparent)]
    Weights(#[from] mouton_models::weights::WeightsError),
    /// A checkpoint is inconsistent, or missing where one is needed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A loss refused its input.
    #[error(transparent)]
    Loss(#[from] mouton_losses::LossError),
    /// A network refused its input.
    #[error("model: {0}")]
    Model(#[from] mouton_models::ops::conv2d::GeometryError),
    /// A loss or the weights became NaN or infinite.
    #[error("step {step}: {quantity} is not finite ({value}); training stopped, the last good checkpoint is kept")]
    NonFinite {
        /// The step (0-based).
        step: u64,
        /// What became non-finite.
        quantity: String,
        /// Its value.
        value: f64,
    },
    /// The run directory is not in the expected state.
    #[error("run directory {0}")]
    RunDir(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The device asked for cannot be used (no CUDA support built in, no GPU) or failed.
    #[error("device: {0}")]
    Device(String),
    /// A metric could not be computed.
    #[error("metric: {0}")]
    Metric(String),
}

impl TrainError {
    /// Whether the error comes from the user's input (files, settings) rather than from a
    /// failure inside mouton: the CLI exits 2 for these, 1 for the rest.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TrainError::Config(_)
                | TrainError::Data(_)
                | TrainError::NoData(_)
                | TrainError::Weights(_)
                | TrainError::Checkpoint(_)
                | TrainError::RunDir(_)
        )
    }
}

/// Makes the process keep freed memory instead of returning it to the kernel at once. glibc
/// unmaps every freed block above 128 KiB and trims the heap top eagerly, and a training step
/// frees and reallocates tens of megabytes of activations and gradients: each step then pays
/// page faults and cross-core TLB flushes. Raising the mmap and trim thresholds and padding heap
/// growth made `mouton train` (SHEEP1, batch 32, 2 cores) go from 42 to 49-50 images/s. Call it
/// at the start of a program that trains; it does nothing off glibc. Returns whether every
/// setting took.
///
/// ```
/// let _ = mouton_train::keep_freed_memory();
/// let v = vec![0u8; 64 << 20];
/// drop(v); // stays with the process for the next step
/// ```
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; any value is valid input.
        unsafe {
            let a = libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            let b = libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            let c = libc::mallopt(libc::M_TOP_PAD, 256 << 20);
            a == 1 && b == 1 && c == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
