//! Training configuration: presets reproducing FIDLE's notebooks, per-loss defaults, and
//! overrides from a TOML file or flags. The resolved configuration is saved in the run
//! directory as `config.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// A starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// FIDLE SHEEP1: sheep1-g / sheep1-d, non-saturating BCE, Adam 1e-4 (Keras betas
    /// 0.9 / 0.999, epsilon 1e-7), batch 32, 10 epochs, one D step per G step.
    Sheep1,
    /// FIDLE SHEEP2: sheep1-g / sheep2-critic, WGAN-GP (lambda 10), n_critic 2, Adam 2e-4
    /// betas 0.5 / 0.9, batch 64.
    Sheep2,
    /// The seeds' VAE: a small convolutional VAE (latent 2 unless `latent_dim` says otherwise),
    /// BCE reconstruction + KL, Adam 1e-3, batch 64.
    Vae,
}

/// The adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Minimax BCE with the saturating generator loss `log(1 - D(G(z)))`.
    Gan,
    /// BCE with the non-saturating generator loss `-log D(G(z))`.
    Nsgan,
    /// Least squares (a = 0, b = c = 1).
    Lsgan,
    /// Hinge.
    Hinge,
    /// Wasserstein with weight clipping.
    Wgan,
    /// Wasserstein with gradient penalty.
    WganGp,
    /// The VAE's loss: reconstruction BCE + kl_weight x KL (only with the vae generator).
    Vae,
}

impl LossKind {
    /// The name used in flags and config files.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Gan => "gan",
            LossKind::Nsgan => "nsgan",
            LossKind::Lsgan => "lsgan",
            LossKind::Hinge => "hinge",
            LossKind::Wgan => "wgan",
            LossKind::WganGp => "wgan-gp",
            LossKind::Vae => "vae",
        }
    }
}

/// The generator's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorArch {
    /// FIDLE SHEEP1's convolutional generator.
    #[serde(rename = "sheep1-g")]
    Sheep1G,
    /// FIDLE's fully connected generator (Lightning notebooks' Generator_1).
    #[serde(rename = "mlp-g")]
    MlpG,
    /// DCGAN's generator (pytorch/examples style, tanh output; 28, 32 or 64 px by `image_size`).
    #[serde(rename = "dcgan-g")]
    DcganG,
    /// The convolutional VAE's decoder (trained as a VAE, not adversarially).
    #[serde(rename = "vae")]
    Vae,
}

/// The critic's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriticArch {
    /// FIDLE SHEEP1's convolutional discriminator.
    #[serde(rename = "sheep1-d")]
    Sheep1D,
    /// FIDLE SHEEP2's critic (the same layers).
    #[serde(rename = "sheep2-critic")]
    Sheep2Critic,
    /// FIDLE's fully connected discriminator (Discriminator_1).
    #[serde(rename = "mlp-d")]
    MlpD,
    /// DCGAN's discriminator (batch norm: not for WGAN-GP).
    #[serde(rename = "dcgan-d")]
    DcganD,
}

/// The optimizer of both networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (PyTorch's update: `p -= lr * m_hat / (sqrt(v_hat) + eps)`).
    Adam,
    /// RMSprop (PyTorch's: `v = alpha v + (1 - alpha) g^2`, `p -= lr g / (sqrt(v) + eps)`).
    Rmsprop,
}

/// How WGAN-GP draws its interpolation weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterpolationKind {
    /// U[0, 1] (the paper).
    Uniform,
    /// N(0, 1) (FIDLE SHEEP2's notebook).
    FidleNormal,
}

fn default_generator() -> GeneratorArch {
    GeneratorArch::Sheep1G
}

fn default_critic() -> CriticArch {
    CriticArch::Sheep1D
}

/// Everything a run needs; saved as `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The preset this started from (it selects the architectures).
    pub preset: Preset,
    /// The adversarial loss.
    pub loss: LossKind,
    /// The generator (runs saved before this field existed used sheep1-g).
    #[serde(default = "default_generator")]
    pub generator: GeneratorArch,
    /// The critic / discriminator (runs saved before this field existed used sheep1-d's
    /// layers).
    #[serde(default = "default_critic")]
    pub critic: CriticArch,
    /// Training images (any format mouton-data reads); `None`: synthetic sheep.
    pub data: Option<PathBuf>,
    /// The data's format (`ndjson`, `binary`, `npy`, `bitmap28`); `None`: detected.
    pub data_format: Option<String>,
    /// How many synthetic sheep to draw when `data` is `None` (at most 2^30 pixels in all:
    /// 1,369,568 at 28 px).
    pub synthetic_count: usize,
    /// Fraction of the images held out for the per-epoch quality metric.
    pub validation_fraction: f64,
    /// Epochs (passes over the training images).
    pub epochs: u64,
    /// Stop after this many steps in total (a step: `n_critic` critic updates and one
    /// generator update), whatever `epochs` says.
    pub max_steps: Option<u64>,
    /// Images per batch (1 to 65,536).
    pub batch_size: usize,
    /// Seed of everything random: initialization, data order, latent vectors, dropout, labels.
    pub seed: u64,
    /// Optimizer of both networks.
    pub optimizer: OptimizerKind,
    /// Generator learning rate.
    pub lr_g: f64,
    /// Critic / discriminator learning rate.
    pub lr_d: f64,
    /// Adam's beta1 (unused by RMSprop).
    pub beta1: f64,
    /// Adam's beta2, or RMSprop's alpha.
    pub beta2: f64,
    /// Adam's / RMSprop's epsilon.
    pub eps: f64,
    /// Critic updates per generator update (1 to 100).
    pub n_critic: usize,
    /// WGAN-GP's penalty weight.
    pub gp_lambda: f64,
    /// WGAN-GP's interpolation weights.
    pub interpolation: InterpolationKind,
    /// WGAN's weight clipping bound.
    pub clip: f64,
    /// Target for real images in BCE (1, or e.g. 0.9 for one-sided label smoothing).
    pub real_label: f64,
    /// Probability of flipping a BCE target (label noise).
    pub label_flip: f64,
    /// Checkpoints kept (the oldest are deleted).
    pub keep_checkpoints: usize,
    /// Also write a checkpoint every this many steps, not only at each epoch's end (an
    /// epoch of 126,121 images can take an hour on a CPU). Counted from step 0, like
    /// `max_steps`.
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Also write TensorBoard event files in the run directory (`tensorboard --logdir`).
    #[serde(default)]
    pub tensorboard: bool,
    /// Keep an exponential moving average of the generator's weights with this decay (in
    /// (0, 1), e.g. 0.999; ramped up over the first updates, see [`crate::ema`]). The average
    /// then draws the epoch samples and metrics and, by default, `mouton sample`; training
    /// never reads it. `None`: no average (FIDLE's notebooks keep none). A resumed run may
    /// start one: it starts from the weights of the checkpoint resumed.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Random projections of the sliced Wasserstein metric (1 to 65,536).
    pub swd_projections: usize,
    /// Warn when the samples' diversity falls below this fraction of the real images'.
    pub detect_collapse: Option<f64>,
    /// VAE: weight k of the KL term in `reconstruction + k KL`.
    #[serde(default = "one")]
    pub kl_weight: f64,
    /// VAE: drop the KL's 1/2 as FIDLE's notebooks do.
    #[serde(default)]
    pub kl_fidle_no_half: bool,
    /// VAE: KL warm-up (annealing, Bowman et al. 2016) over this many epochs: the KL's weight
    /// rises linearly from 0 at the first step to `kl_weight` after them, then stays there
    /// ([`TrainConfig::kl_weight_at`]). `None` (or 0): `kl_weight` from the first step, as
    /// FIDLE's notebooks train. On FIDLE's VAE it keeps more of the encoder's hidden units
    /// alive (BENCHMARKS.md).
    #[serde(default)]
    pub kl_warmup: Option<f64>,
    /// Side of the square training images in pixels: 28 (every architecture), or 32 and 64
    /// (the DCGAN pair, dcgan-g with dcgan-d, only).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// VAE: dimensions of the latent space, one of [`VAE_LATENT_DIMS`] (`None`: 2, FIDLE's
    /// choice, which can be plotted). The GAN generators' latents are fixed (sheep1-g and
    /// mlp-g 128, dcgan-g 100), so they take none.
    #[serde(default)]
    pub latent_dim: Option<usize>,
}

/// The latent sizes a VAE can be trained with. Each is a separately compiled network (the
/// size is a type parameter); the encoder's last hidden layer has 16 units, so more than 16
/// dimensions would add no information.
pub const VAE_LATENT_DIMS: [usize; 4] = [2, 4, 8, 16];

fn default_image_size() -> usize {
    28
}

fn one() -> f64 {
    1.0
}

impl TrainConfig {
    /// A preset's configuration.
    ///
    /// ```
    /// use mouton_train::config::{LossKind, Preset, TrainConfig};
    /// let c = TrainConfig::preset(Preset::Sheep2);
    /// assert_eq!((c.loss, c.n_critic, c.batch_size, c.lr_d), (LossKind::WganGp, 2, 64, 2e-4));
    /// ```
    pub fn preset(preset: Preset) -> Self {
        let base = TrainConfig {
            preset,
            loss: LossKind::Nsgan,
            generator: GeneratorArch::Sheep1G,
            critic: CriticArch::Sheep1D,
            data: None,
            data_format: None,
            synthetic_count: 2048,
            validation_fraction: 0.1,
            epochs: 10,
            max_steps: None,
            batch_size: 32,
            seed: 0,
            optimizer: OptimizerKind::Adam,
            lr_g: 1e-4,
            lr_d: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            n_critic: 1,
            gp_lambda: 10.0,
            interpolation: InterpolationKind::Uniform,
            clip: 0.01,
            real_label: 1.0,
            label_flip: 0.0,
            keep_checkpoints: 3,
            checkpoint_every: None,
            tensorboard: false,
            ema: None,
            swd_projections: 64,
            detect_collapse: None,
            kl_weight: 1.0,
            kl_fidle_no_half: false,
            kl_warmup: None,
            image_size: 28,
            latent_dim: None,
        };
        match preset {
            Preset::Sheep1 => base,
            Preset::Sheep2 => TrainConfig {
                loss: LossKind::WganGp,
                critic: CriticArch::Sheep2Critic,
                batch_size: 64,
                lr_g: 2e-4,
                lr_d: 2e-4,
                beta1: 0.5,
                beta2: 0.9,
                eps: 1e-8,
                n_critic: 2,
                ..base
            },
            Preset::Vae => TrainConfig {
                loss: LossKind::Vae,
                generator: GeneratorArch::Vae,
                latent_dim: Some(2),
                batch_size: 64,
                lr_g: 1e-3,
                lr_d: 1e-3,
                eps: 1e-7,
                ..base
            },
        }
    }

    /// Switches the loss, taking the defaults of its paper where it differs from the preset's:
    /// WGAN gets RMSprop 5e-5, n_critic 5, clip 0.01; WGAN-GP gets Adam 1e-4 with betas 0 / 0.9,
    /// lambda 10, n_critic 5.
    ///
    /// ```
    /// use mouton_train::config::{LossKind, OptimizerKind, Preset, TrainConfig};
    /// let c = TrainConfig::preset(Preset::Sheep1).with_loss(LossKind::Wgan);
    /// assert_eq!((c.optimizer, c.lr_d, c.n_critic, c.clip), (OptimizerKind::Rmsprop, 5e-5, 5, 0.01));
    /// // Back to a BCE loss: the preset's Adam and one critic update per step again.
    /// let c = c.with_loss(LossKind::Hinge);
    /// assert_eq!((c.optimizer, c.lr_d, c.n_critic), (OptimizerKind::Adam, 1e-4, 1));
    /// ```
    pub fn with_loss(mut self, loss: LossKind) -> Self {
        if loss == self.loss {
            return self;
        }
        self.loss = loss;
        match loss {
            LossKind::Wgan => {
                self.optimizer = OptimizerKind::Rmsprop;
                self.lr_g = 5e-5;
                self.lr_d = 5e-5;
                self.beta2 = 0.99;
                self.eps = 1e-8;
                self.n_critic = 5;
                self.clip = 0.01;
            }
            LossKind::WganGp => {
                self.optimizer = OptimizerKind::Adam;
                self.lr_g = 1e-4;
                self.lr_d = 1e-4;
                self.beta1 = 0.0;
                self.beta2 = 0.9;
                self.eps = 1e-8;
                self.n_critic = 5;
                self.gp_lambda = 10.0;
            }
            _ => {
                let p = TrainConfig::preset(Preset::Sheep1);
                self.optimizer = p.optimizer;
                self.lr_g = p.lr_g;
                self.lr_d = p.lr_d;
                self.beta1 = p.beta1;
                self.beta2 = p.beta2;
                self.eps = p.eps;
                self.n_critic = 1;
            }
        }
        self
    }

    /// Checks every value; the error names the field.
    ///
    /// ```
    /// use mouton_train::config::{Preset, TrainConfig};
    /// let mut c = TrainConfig::preset(Preset::Sheep2);
    /// assert!(c.validate().is_ok());
    /// c.batch_size = 0;
    /// assert_eq!(c.validate().unwrap_err().to_string(), "config: batch_size: must be at least 1");
    /// ```
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, why: &str| Err(TrainError::Config(format!("{field}: {why}")));
        let pos = |v: f64| v > 0.0 && v.is_finite();
        // Upper bounds far above any real run, so that products of these cannot overflow
        // and a typo cannot ask for terabytes after an epoch of training.
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.batch_size > 65_536 {
            return bad("batch_size", "must be at most 65536");
        }
        if self.n_critic == 0 {
            return bad("n_critic", "must be at least 1");
        }
        if self.n_critic > 100 {
            return bad("n_critic", "must be at most 100");
        }
        // A run of no step would write a configuration and nothing else.
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", "must be at least 1");
        }
        if (self.loss == LossKind::Vae) != (self.generator == GeneratorArch::Vae) {
            return bad(
                "loss/generator",
                "the vae loss goes with the vae generator and no other (use --preset vae)",
            );
        }
        if self.loss == LossKind::Vae && self.n_critic != 1 {
            return bad("n_critic", "a VAE step is one update: n_critic must be 1");
        }
        if self.loss == LossKind::WganGp && self.critic == CriticArch::DcganD {
            return bad(
                "critic",
                "dcgan-d normalizes over the batch, which the per-sample gradient penalty \
                 forbids: use sheep2-critic or mlp-d with wgan-gp",
            );
        }
        match self.image_size {
            28 => {}
            32 | 64 => {
                if (self.generator, self.critic) != (GeneratorArch::DcganG, CriticArch::DcganD) {
                    return bad(
                        "image_size",
                        "32 and 64 px are for the DCGAN pair: use --generator dcgan-g \
                         --critic dcgan-d (the other architectures take 28x28)",
                    );
                }
            }
            _ => return bad("image_size", "must be 28, 32 or 64"),
        }
        match (self.generator, self.latent_dim) {
            (GeneratorArch::Vae, Some(k)) if !VAE_LATENT_DIMS.contains(&k) => {
                return bad(
                    "latent_dim",
                    "must be 2, 4, 8 or 16 (the encoder's last hidden layer has 16 units)",
                );
            }
            (GeneratorArch::Vae, _) | (_, None) => {}
            (_, Some(_)) => {
                return bad(
                    "latent_dim",
                    "sets the VAE's latent size; the GAN generators' are fixed (sheep1-g and \
                     mlp-g 128, dcgan-g 100)",
                );
            }
        }
        if !(self.kl_weight >= 0.0 && self.kl_weight.is_finite()) {
            return bad("kl_weight", "must be finite and >= 0");
        }
        if let Some(w) = self.kl_warmup {
            if self.loss != LossKind::Vae {
                return bad(
                    "kl_warmup",
                    "ramps up a VAE's KL term (--preset vae); a GAN loss has none",
                );
            }
            if !(0.0..=1e9).contains(&w) {
                return bad("kl_warmup", "must be a number of epochs from 0 to 1e9");
            }
        }
        if !pos(self.lr_g) || !pos(self.lr_d) {
            return bad("lr_g/lr_d", "learning rates must be positive and finite");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1/beta2", "must be in [0, 1)");
        }
        if !pos(self.eps) {
            return bad("eps", "must be positive");
        }
        if !(self.gp_lambda >= 0.0 && self.gp_lambda.is_finite()) {
            return bad("gp_lambda", "must be finite and >= 0");
        }
        if !pos(self.clip) {
            return bad("clip", "must be positive");
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return bad("validation_fraction", "must be in [0, 0.9)");
        }
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints", "must be at least 1");
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint_every", "must be at least 1");
        }
        if !(1..=65_536).contains(&self.swd_projections) {
            return bad("swd_projections", "must be 1 to 65536");
        }
        if self.data.is_none() {
            // Held as f32 pixels: at most 2^30 of them (4 GiB), not an allocation that aborts.
            let most = (1usize << 30) / (self.image_size * self.image_size);
            if !(1..=most).contains(&self.synthetic_count) {
                return bad(
                    "synthetic_count",
                    &format!(
                        "must be 1 to {most} at {0}x{0} px (4 GiB of pixels)",
                        self.image_size
                    ),
                );
            }
        }
        if let Some(f) = self.detect_collapse {
            if !(f > 0.0 && f < 1.0) {
                return bad("detect_collapse", "must be in (0, 1)");
            }
        }
        if let Some(d) = self.ema {
            if !(d > 0.0 && d < 1.0) {
                return bad("ema", "the decay must be in (0, 1), e.g. 0.999");
            }
        }
        mouton_losses::gan::Labels {
            real: self.real_label,
            flip: self.label_flip,
        }
        .validate()
        .map_err(|e| TrainError::Config(e.to_string()))?;
        Ok(())
    }

    /// The VAE's latent size (`latent_dim`, 2 when unset).
    ///
    /// ```
    /// use mouton_train::config::{Preset, TrainConfig};
    /// let mut c = TrainConfig::preset(Preset::Vae);
    /// assert_eq!(c.vae_latent(), 2);
    /// c.latent_dim = Some(8);
    /// assert_eq!(c.vae_latent(), 8);
    /// c.latent_dim = Some(5); // not a size the trainer builds
    /// let err = c.validate().unwrap_err().to_string();
    /// assert!(err.starts_with("config: latent_dim: must be 2, 4, 8 or 16"), "{err}");
    /// ```
    pub fn vae_latent(&self) -> usize {
        self.latent_dim.unwrap_or(2)
    }

    /// The KL term's weight in the VAE's loss at `step` (0-based: the step about to be taken)
    /// of a run of `steps_per_epoch` steps an epoch: `kl_weight`, ramped up linearly from 0
    /// over the first `kl_warmup` epochs when that is set. It depends on the step alone, so
    /// a resumed run weighs each step as an uninterrupted one does.
    ///
    /// ```
    /// use mouton_train::config::{Preset, TrainConfig};
    /// let mut c = TrainConfig::preset(Preset::Vae);
    /// assert_eq!(c.kl_weight_at(0, 14), 1.0); // no warm-up: FIDLE's recipe
    /// c.kl_warmup = Some(2.0); // two epochs of 14 steps
    /// c.kl_weight = 0.5;
    /// assert_eq!(c.kl_weight_at(0, 14), 0.0);
    /// assert_eq!(c.kl_weight_at(7, 14), 0.125);
    /// assert_eq!(c.kl_weight_at(28, 14), 0.5);
    /// assert_eq!(c.kl_weight_at(1_000, 14), 0.5);
    /// ```
    pub fn kl_weight_at(&self, step: u64, steps_per_epoch: u64) -> f64 {
        let ramp = self.kl_warmup.unwrap_or(0.0) * steps_per_epoch as f64;
        if ramp > 0.0 && (step as f64) < ramp {
            self.kl_weight * (step as f64 / ramp)
        } else {
            self.kl_weight
        }
    }

    /// The names of the fields whose values differ from `other`'s.
    ///
    /// ```
    /// use mouton_train::config::{Preset, TrainConfig};
    /// let a = TrainConfig::preset(Preset::Sheep1);
    /// let mut b = a.clone();
    /// b.seed = 4;
    /// assert_eq!(a.differences(&b), ["seed"]);
    /// ```
    pub fn differences(&self, other: &TrainConfig) -> Vec<String> {
        let (a, b) = (
            toml::Value::try_from(self).ok(),
            toml::Value::try_from(other).ok(),
        );
        let (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) = (a, b) else {
            return vec!["(unserializable)".to_string()];
        };
        // Every key either side has (an unset optional field is absent from its table).
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| k.to_string())
            .collect()
    }

    /// TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# unserializable config: {e}\n"))
    }

    /// Reads a saved configuration; one that does not validate is an error naming the file.
    ///
    /// ```
    /// use mouton_train::config::{Preset, TrainConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("config.toml");
    /// let mut cfg = TrainConfig::preset(Preset::Sheep1);
    /// std::fs::write(&path, cfg.to_toml())?;
    /// assert_eq!(TrainConfig::load(&path)?, cfg);
    /// cfg.image_size = 64; // SHEEP1's networks take 28x28 only
    /// std::fs::write(&path, cfg.to_toml())?;
    /// let err = TrainConfig::load(&path).unwrap_err().to_string();
    /// assert!(err.contains("config.toml: image_size: 32 and 64 px are for the DCGAN pair"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let cfg: Self = parse_toml(path)?;
        // mouton writes only valid configurations: a file that fails here was edited, and
        // would otherwise build a network whose shapes do not fit its checkpoints.
        cfg.validate().map_err(|e| match e {
            TrainError::Config(m) => TrainError::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }
}

/// Reads a TOML file into `T`; errors name the file and the line.
fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map_or(String::new(), |l| format!(":{l}"));
        TrainError::Config(format!("{}{at}: {}", path.display(), e.message()))
    })
}

/// Partial settings from a TOML file (`mouton train --config FILE`) or flags; every field
/// optional, unknown keys rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Overrides {
    pub preset: Option<Preset>,
    pub loss: Option<LossKind>,
    pub generator: Option<GeneratorArch>,
    pub critic: Option<CriticArch>,
    pub data: Option<PathBuf>,
    pub data_format: Option<String>,
    pub synthetic_count: Option<usize>,
    pub validation_fraction: Option<f64>,
    pub epochs: Option<u64>,
    pub max_steps: Option<u64>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub optimizer: Option<OptimizerKind>,
    pub lr_g: Option<f64>,
    pub lr_d: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub n_critic: Option<usize>,
    pub gp_lambda: Option<f64>,
    pub interpolation: Option<InterpolationKind>,
    pub clip: Option<f64>,
    pub real_label: Option<f64>,
    pub label_flip: Option<f64>,
    pub keep_checkpoints: Option<usize>,
    pub checkpoint_every: Option<u64>,
    pub tensorboard: Option<bool>,
    pub ema: Option<f64>,
    pub swd_projections: Option<usize>,
    pub detect_collapse: Option<f64>,
    pub kl_weight: Option<f64>,
    pub kl_fidle_no_half: Option<bool>,
    pub kl_warmup: Option<f64>,
    pub image_size: Option<usize>,
    pub latent_dim: Option<usize>,
}

impl Overrides {
    /// Reads a TOML file of overrides; errors name the file and the line.
    ///
    /// ```
    /// use mouton_train::config::Overrides;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("run.toml");
    /// std::fs::write(&path, "epochs = 3\nseed = 11\n")?;
    /// let o = Overrides::load(&path)?;
    /// assert_eq!((o.epochs, o.seed, o.batch_size), (Some(3), Some(11), None));
    /// std::fs::write(&path, "epochs = 3\nbatch = 64\n")?; // not a key
    /// let err = Overrides::load(&path).unwrap_err().to_string();
    /// assert!(err.contains("run.toml:2: unknown field `batch`"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        parse_toml(path)
    }

    /// `other`'s fields where set, else `self`'s.
    ///
    /// ```
    /// use mouton_train::config::Overrides;
    /// let file = Overrides { epochs: Some(3), seed: Some(11), ..Default::default() };
    /// let flags = Overrides { seed: Some(5), ..Default::default() };
    /// let o = file.then(flags); // flags win over the file
    /// assert_eq!((o.epochs, o.seed), (Some(3), Some(5)));
    /// ```
    pub fn then(self, other: Overrides) -> Overrides {
        macro_rules! pick {
            ($($f:ident),*) => { Overrides { $($f: other.$f.or(self.$f)),* } };
        }
        pick!(
            preset,
            loss,
            generator,
            critic,
            data,
            data_format,
            synthetic_count,
            validation_fraction,
            epochs,
            max_steps,
            batch_size,
            seed,
            optimizer,
            lr_g,
            lr_d,
            beta1,
            beta2,
            eps,
            n_critic,
            gp_lambda,
            interpolation,
            clip,
            real_label,
            label_flip,
            keep_checkpoints,
            checkpoint_every,
            tensorboard,
            ema,
            swd_projections,
            detect_collapse,
            kl_weight,
            kl_fidle_no_half,
            kl_warmup,
            image_size,
            latent_dim
        )
    }

    /// `cfg` with every field set here replaced, as is (no preset or loss defaults).
    ///
    /// ```
    /// use mouton_train::config::{LossKind, Overrides, Preset, TrainConfig};
    /// let sheep1 = TrainConfig::preset(Preset::Sheep1);
    /// let c = Overrides { loss: Some(LossKind::Wgan), ..Default::default() }.apply(sheep1.clone());
    /// // Only the loss changes: unlike `resolve`, no WGAN defaults (RMSprop, n_critic 5) come along.
    /// assert_eq!(sheep1.differences(&c), ["loss"]);
    /// ```
    pub fn apply(&self, mut c: TrainConfig) -> TrainConfig {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f.clone() { c.$f = v; } )* };
        }
        set!(
            kl_weight,
            kl_fidle_no_half,
            tensorboard,
            image_size,
            preset,
            loss,
            generator,
            critic,
            synthetic_count,
            validation_fraction,
            epochs,
            batch_size,
            seed,
            optimizer,
            lr_g,
            lr_d,
            beta1,
            beta2,
            eps,
            n_critic,
            gp_lambda,
            interpolation,
            clip,
            real_label,
            label_flip,
            keep_checkpoints,
            swd_projections
        );
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        if self.data_format.is_some() {
            c.data_format = self.data_format.clone();
        }
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        if self.detect_collapse.is_some() {
            c.detect_collapse = self.detect_collapse;
        }
        if self.ema.is_some() {
            c.ema = self.ema;
        }
        if self.checkpoint_every.is_some() {
            c.checkpoint_every = self.checkpoint_every;
        }
        if self.latent_dim.is_some() {
            c.latent_dim = self.latent_dim;
        }
        if self.kl_warmup.is_some() {
            c.kl_warmup = self.kl_warmup;
        }
        c
    }

    /// The configuration: the preset (sheep1 by default), then the loss's defaults, then
    /// every other field set here.
    ///
    /// ```
    /// use mouton_train::config::{LossKind, OptimizerKind, Overrides};
    /// let c = Overrides { loss: Some(LossKind::Wgan), lr_d: Some(1e-4), ..Default::default() }
    ///     .resolve()
    ///     .unwrap();
    /// assert_eq!((c.optimizer, c.n_critic, c.lr_g, c.lr_d), (OptimizerKind::Rmsprop, 5, 5e-5, 1e-4));
    /// ```
    pub fn resolve(&self) -> Result<TrainConfig, TrainError> {
        let mut c = TrainConfig::preset(self.preset.unwrap_or(Preset::Sheep1));
        if let Some(l) = self.loss {
            c = c.with_loss(l);
        }
        let c = self.apply(c);
        c.validate()?;
        Ok(c)
    }
}
