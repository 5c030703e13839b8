//! `metrics.jsonl`: one JSON object per line, `"kind": "step"` or `"kind": "epoch"`.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{io_err, TrainError};

/// Measurements of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Always "step".
    pub kind: String,
    /// Step, 1-based (the number of steps done).
    pub step: u64,
    /// Epoch, 1-based.
    pub epoch: u64,
    /// Critic / discriminator loss (mean over the step's critic updates).
    pub d_loss: f64,
    /// Generator loss.
    pub g_loss: f64,
    /// Gradient penalty (WGAN-GP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gp: Option<f64>,
    /// Mean critic output on real images.
    pub d_real: f64,
    /// Mean critic output on generated images.
    pub d_fake: f64,
    /// L2 norm of the critic's gradient (last critic update).
    pub grad_norm_d: f64,
    /// L2 norm of the generator's gradient.
    pub grad_norm_g: f64,
    /// Real images consumed per second by this step.
    pub images_per_s: f64,
    /// VAE: the reconstruction term (then `d_loss` is the total loss and `g_loss` the
    /// weighted KL term).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recon: Option<f64>,
    /// VAE: the KL divergence (unweighted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl: Option<f64>,
    /// VAE: the KL term's weight at this step (`kl_weight`, or less during a `kl_warmup`):
    /// `g_loss` is `kl_weight x kl`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl_weight: Option<f64>,
}

/// Measurements at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Always "epoch".
    pub kind: String,
    /// Step reached.
    pub step: u64,
    /// Epoch, 1-based.
    pub epoch: u64,
    /// Sliced Wasserstein distance (p = 2) between generated and held-out real images (`None`
    /// with fewer than 8 held-out images).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swd: Option<f64>,
    /// The same between two halves of the held-out real images (what "as good as real" is).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swd_real_baseline: Option<f64>,
    /// Mean pairwise distance of the fixed-latent samples over that of real images.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diversity_ratio: Option<f64>,
    /// With `ema`, `swd` is the moving average's samples' and this is the trained
    /// generator's (the same latent vectors and real images).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swd_trained: Option<f64>,
    /// Seconds spent in the epoch.
    pub seconds: f64,
}

/// Appends one record as a line (a single write, then flush).
///
/// ```
/// use mouton_train::metrics::{append, read, EpochRecord};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("metrics.jsonl");
/// let epoch = |step| EpochRecord {
///     kind: "epoch".into(), step, epoch: step / 10, swd: Some(0.25),
///     swd_real_baseline: None, diversity_ratio: None, swd_trained: None, seconds: 1.5,
/// };
/// append(&path, &epoch(10))?;
/// append(&path, &epoch(20))?;
/// let text = std::fs::read_to_string(&path)?;
/// assert_eq!(text.lines().count(), 2);
/// assert!(text.starts_with(r#"{"kind":"epoch","step":10,"epoch":1,"swd":0.25,"seconds":1.5}"#));
/// assert_eq!(read(&path)?.1, [epoch(10), epoch(20)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn append<T: Serialize>(path: &Path, record: &T) -> Result<(), TrainError> {
    let mut line = serde_json::to_vec(record).map_err(|e| TrainError::Metric(e.to_string()))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(&line).map_err(io_err(path))?;
    f.flush().map_err(io_err(path))
}

/// Every step record and epoch record of a file. A torn last line (a crash mid-write) is
/// ignored; any other unreadable line is an error naming the line.
///
/// ```
/// use mouton_train::metrics::read;
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("metrics.jsonl");
/// let epoch = r#"{"kind":"epoch","step":7,"epoch":1,"seconds":2.0}"#;
/// // A crash in the middle of the last line: that line is dropped.
/// std::fs::write(&path, format!("{epoch}\n{{\"kind\":\"ste"))?;
/// let (steps, epochs) = read(&path)?;
/// assert_eq!((steps.len(), epochs.len(), epochs[0].step), (0, 1, 7));
/// // The same damage on an earlier line is an error naming it.
/// std::fs::write(&path, format!("{{\"kind\":\"ste\n{epoch}\n"))?;
/// let err = read(&path).unwrap_err().to_string();
/// assert!(err.contains("metrics.jsonl:1:"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read(path: &Path) -> Result<(Vec<StepRecord>, Vec<EpochRecord>), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    let (mut steps, mut epochs) = (Vec::new(), Vec::new());
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let last = i + 1 == lines.len() && !text.ends_with('\n');
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if last => break,
            Err(e) => {
                return Err(TrainError::Metric(format!(
                    "{}:{}: {e}",
                    path.display(),
                    i + 1
                )))
            }
        };
        let bad =
            |e: serde_json::Error| TrainError::Metric(format!("{}:{}: {e}", path.display(), i + 1));
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("step") => steps.push(serde_json::from_value(value).map_err(bad)?),
            Some("epoch") => epochs.push(serde_json::from_value(value).map_err(bad)?),
            _ => {
                return Err(TrainError::Metric(format!(
                    "{}:{}: no \"kind\"",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    Ok((steps, epochs))
}

/// Keeps only the records up to `step` (after a resume from that step's checkpoint, the lines
/// written past it belong to work that is being redone). Rewritten atomically.
///
/// ```
/// use mouton_train::metrics::{read, truncate_after};
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("metrics.jsonl");
/// let epoch = |step: u64| format!(r#"{{"kind":"epoch","step":{step},"epoch":1,"seconds":2.0}}"#);
/// std::fs::write(&path, format!("{}\n{}\n{}\n", epoch(5), epoch(10), epoch(15)))?;
/// truncate_after(&path, 10)?; // resumed from step 10's checkpoint
/// let steps: Vec<u64> = read(&path)?.1.iter().map(|e| e.step).collect();
/// assert_eq!(steps, [5, 10]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn truncate_after(path: &Path, step: u64) -> Result<(), TrainError> {
    let (steps, epochs) = read(path)?;
    let mut out = Vec::new();
    let mut push = |v: Vec<u8>| {
        out.extend(v);
        out.push(b'\n');
    };
    // Merge back in file order: by step, an epoch record after its last step.
    let (mut i, mut j) = (0, 0);
    let steps: Vec<_> = steps.into_iter().filter(|s| s.step <= step).collect();
    let epochs: Vec<_> = epochs.into_iter().filter(|e| e.step <= step).collect();
    while i < steps.len() || j < epochs.len() {
        let take_step = j >= epochs.len() || (i < steps.len() && steps[i].step <= epochs[j].step);
        let line = if take_step {
            i += 1;
            serde_json::to_vec(&steps[i - 1])
        } else {
            j += 1;
            serde_json::to_vec(&epochs[j - 1])
        }
        .map_err(|e| TrainError::Metric(e.to_string()))?;
        push(line);
    }
    mouton_data::write_atomically(path, |f| f.write_all(&out))
        .map_err(|e| TrainError::Metric(e.to_string()))
}
