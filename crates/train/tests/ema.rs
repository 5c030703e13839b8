//! The moving average of the generator's weights (`ema`): its recurrence over a real run,
//! checkpoints and resume, and what draws the samples and metrics.

use std::collections::BTreeMap;
use std::path::Path;

use dfdx::prelude::*;
use mouton_models::dcgan::DcganGenerator;
use mouton_models::weights::{WeightsFile, WeightsWriter};
use mouton_train::checkpoint::{self, Pick, Weights};
use mouton_train::config::{CriticArch, GeneratorArch, Overrides, Preset, TrainConfig};
use mouton_train::trainer::{build, train, Event, RunOptions};
use mouton_train::{data, metrics, sampling, TrainError};

/// DCGAN's generator (it has batch norm, whose running statistics are copied, not averaged)
/// on 72 synthetic sheep: 58 to train on, 3 steps of 16 per epoch.
fn cfg(ema: Option<f64>, epochs: u64) -> TrainConfig {
    let mut c = Overrides {
        preset: Some(Preset::Sheep1),
        generator: Some(GeneratorArch::DcganG),
        critic: Some(CriticArch::MlpD),
        synthetic_count: Some(72),
        validation_fraction: Some(0.2),
        batch_size: Some(16),
        epochs: Some(epochs),
        seed: Some(4),
        swd_projections: Some(8),
        ema,
        ..Default::default()
    }
    .resolve()
    .unwrap();
    // Large steps, so that the generator's weights move visibly from step to step.
    c.lr_g = 1e-2;
    c
}

fn run(cfg: &TrainConfig, dir: &Path, resume: bool) -> Result<(), TrainError> {
    let data = data::load(cfg).unwrap();
    let opts = RunOptions {
        resume,
        ..Default::default()
    };
    train(cfg, &data, dir, &opts, &mut |_| {}).map(|_| ())
}

/// Every tensor of a weights file under `prefix`, by name without it.
fn under(f: &WeightsFile, prefix: &str) -> BTreeMap<String, Vec<f32>> {
    f.entries()
        .into_iter()
        .filter_map(|(name, shape)| {
            let rest = name.strip_prefix(prefix)?.to_string();
            Some((rest, f.tensor(&name, &shape).unwrap()))
        })
        .collect()
}

fn is_running_stat(name: &str) -> bool {
    name.contains("running_")
}

#[test]
fn the_average_follows_its_recurrence_at_every_step_and_copies_running_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let decay = 0.5;
    let mut c = cfg(Some(decay), 1);
    (c.checkpoint_every, c.keep_checkpoints) = (Some(1), 10);
    run(&c, tmp.path(), false).unwrap();

    // The starting point: the generator as built, before any update.
    let g0: DcganGenerator<f32, Cpu> = build(&c, 0);
    let p = tmp.path().join("g0.safetensors");
    let mut w = WeightsWriter::new();
    w.add_module("g.", &g0);
    w.write(&p).unwrap();
    let avg = under(&WeightsFile::open(&p).unwrap(), "g.");
    follows_recurrence(tmp.path(), decay, avg, 1..=3);
}

/// Checks that the average saved at each of `steps` (each one's checkpoint) is, bit for bit,
/// the recurrence from `avg` (the average before the first of them) and the generator's
/// weights saved beside it; running statistics are the generator's.
fn follows_recurrence(
    dir: &Path,
    decay: f64,
    mut avg: BTreeMap<String, Vec<f32>>,
    steps: std::ops::RangeInclusive<u64>,
) {
    for step in steps {
        let f = WeightsFile::open(&checkpoint::path_for(dir, step)).unwrap();
        let (g, saved) = (under(&f, "g."), under(&f, "ema."));
        assert_eq!(
            saved.len(),
            g.len(),
            "every tensor of the generator, averaged"
        );
        // The ramp: min(decay, (1 + t) / (10 + t)) after t earlier updates.
        let d = decay.min((step as f64) / (9.0 + step as f64));
        let (a, b) = (d as f32, (1.0 - d) as f32);
        let mut moved = 0;
        for (name, w) in &g {
            let prev = &avg[name];
            let want: Vec<f32> = if is_running_stat(name) {
                w.clone()
            } else {
                prev.iter().zip(w).map(|(x, y)| x * a + y * b).collect()
            };
            let got = &saved[name];
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "step {step}, {name}"
            );
            moved += usize::from(!is_running_stat(name) && got != w);
        }
        assert!(moved > 0, "step {step}: the average is not the generator");
        avg = saved;
    }
    assert!(
        avg.keys().any(|k| is_running_stat(k)),
        "dcgan-g has batch norm"
    );
}

#[test]
fn a_run_with_an_average_resumes_bit_for_bit() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&cfg(Some(0.9), 2), a.path(), false).unwrap();
    run(&cfg(Some(0.9), 1), b.path(), false).unwrap();
    run(&cfg(Some(0.9), 2), b.path(), true).unwrap();
    let (fa, fb) = (
        WeightsFile::open(&checkpoint::path_for(a.path(), 6)).unwrap(),
        WeightsFile::open(&checkpoint::path_for(b.path(), 6)).unwrap(),
    );
    let (ea, eb) = (under(&fa, ""), under(&fb, ""));
    assert!(ea.keys().any(|k| k.starts_with("ema.")));
    assert_eq!(ea.keys().collect::<Vec<_>>(), eb.keys().collect::<Vec<_>>());
    for (name, v) in &ea {
        let same = v
            .iter()
            .zip(&eb[name])
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{name} differs after the resume");
    }
    let (_, epochs_a) = metrics::read(&a.path().join("metrics.jsonl")).unwrap();
    let (_, epochs_b) = metrics::read(&b.path().join("metrics.jsonl")).unwrap();
    assert_eq!(epochs_a[1].swd, epochs_b[1].swd);
    assert_eq!(epochs_a[1].swd_trained, epochs_b[1].swd_trained);
}

#[test]
fn the_average_draws_the_samples_metrics_and_sample_command_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let c = cfg(Some(0.9), 1);
    run(&c, tmp.path(), false).unwrap();
    let z = sampling::latent_of(c.seed, 0, 64, mouton_models::dcgan::DCGAN_LATENT);
    let (avg, loaded) =
        sampling::generate_from_run(tmp.path(), Pick::Newest, Weights::Average, &z).unwrap();
    assert!(loaded.averaged && loaded.step == 3);
    let (trained, loaded) =
        sampling::generate_from_run(tmp.path(), Pick::Newest, Weights::Trained, &z).unwrap();
    assert!(!loaded.averaged);
    assert!(avg != trained);
    // The epoch's grid is the average's drawing of the fixed latent vectors.
    let grid = |images: &[f32], name: &str| {
        let p = tmp.path().join(name);
        sampling::write_grid(&p, images, 28, 8).unwrap();
        std::fs::read(p).unwrap()
    };
    let saved = std::fs::read(tmp.path().join("samples/epoch_001.png")).unwrap();
    assert!(grid(&avg, "avg.png") == saved);
    assert!(grid(&trained, "trained.png") != saved);
    // Both distances are recorded, and they differ (other weights, other images).
    let (_, epochs) = metrics::read(&tmp.path().join("metrics.jsonl")).unwrap();
    let (swd, swd_trained) = (epochs[0].swd.unwrap(), epochs[0].swd_trained.unwrap());
    assert!(swd.is_finite() && swd_trained.is_finite() && swd != swd_trained);

    // Without an average: no second distance, and the trained weights draw either way.
    let plain = tempfile::tempdir().unwrap();
    run(&cfg(None, 1), plain.path(), false).unwrap();
    let (_, epochs) = metrics::read(&plain.path().join("metrics.jsonl")).unwrap();
    assert_eq!(epochs[0].swd_trained, None);
    let (a, la) =
        sampling::generate_from_run(plain.path(), Pick::Newest, Weights::Average, &z).unwrap();
    let (t, lt) =
        sampling::generate_from_run(plain.path(), Pick::Newest, Weights::Trained, &z).unwrap();
    assert!(a == t && !la.averaged && !lt.averaged);
}

#[test]
fn an_average_switched_on_at_a_resume_starts_from_the_resumed_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cfg(None, 1);
    (c.checkpoint_every, c.keep_checkpoints) = (Some(1), 10);
    run(&c, tmp.path(), false).unwrap();
    let third = checkpoint::path_for(tmp.path(), 3);
    assert!(!checkpoint::holds_average(&third).unwrap());
    (c.ema, c.epochs) = (Some(0.5), 2);
    let data = data::load(&c).unwrap();
    let opts = RunOptions {
        resume: true,
        ..Default::default()
    };
    let mut warnings = Vec::new();
    train(&c, &data, tmp.path(), &opts, &mut |e| {
        if let Event::Warning(w) = e {
            warnings.push(w)
        }
    })
    .unwrap();
    assert!(
        warnings.iter().any(|w| w.contains(
            "step_000000003.safetensors holds no moving average of the generator: the average \
             (ema) starts from its step-3 weights"
        )),
        "{warnings:?}"
    );
    // The average starts as the step-3 generator, then follows its recurrence.
    let g3 = under(&WeightsFile::open(&third).unwrap(), "g.");
    follows_recurrence(tmp.path(), 0.5, g3, 4..=6);
}

#[test]
fn the_decay_must_lie_strictly_between_zero_and_one() {
    for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        let mut c = cfg(None, 1);
        c.ema = Some(bad);
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("ema: the decay must be in (0, 1)"),
            "{bad}: {err}"
        );
    }
    let mut c = cfg(None, 1);
    c.ema = Some(0.9999);
    assert!(c.validate().is_ok());
    // The key round-trips through config.toml, and old files without it still load.
    let back: TrainConfig = toml::from_str(&c.to_toml()).unwrap();
    assert_eq!(back.ema, Some(0.9999));
    let old = cfg(None, 1).to_toml();
    assert!(!old.contains("ema"));
    assert_eq!(toml::from_str::<TrainConfig>(&old).unwrap().ema, None);
}

#[test]
fn the_vae_keeps_an_average_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Overrides {
        preset: Some(Preset::Vae),
        synthetic_count: Some(72),
        validation_fraction: Some(0.2),
        batch_size: Some(16),
        epochs: Some(1),
        swd_projections: Some(8),
        ema: Some(0.9),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    c.lr_g = 3e-3;
    run(&c, tmp.path(), false).unwrap();
    let f = WeightsFile::open(&checkpoint::path_for(tmp.path(), 3)).unwrap();
    let (g, avg) = (under(&f, "g."), under(&f, "ema."));
    assert_eq!(g.keys().collect::<Vec<_>>(), avg.keys().collect::<Vec<_>>());
    assert!(g != avg, "three updates: the average lags the weights");
    let z = sampling::latent_of(1, 0, 4, 2);
    let (_, loaded) =
        sampling::generate_from_run(tmp.path(), Pick::Newest, Weights::Average, &z).unwrap();
    assert!(loaded.averaged);
    let (_, epochs) = metrics::read(&tmp.path().join("metrics.jsonl")).unwrap();
    assert!(epochs[0].swd_trained.is_some());
}
