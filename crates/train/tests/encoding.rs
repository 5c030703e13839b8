//! A VAE run's encodings and reconstructions (`encoding`): checked against the model and the
//! losses it trained with, across chunks of images, checkpoints and moving averages.

use std::path::Path;

use dfdx::prelude::*;
use mouton_losses::vae::{kl_divergence, reconstruction_bce, KlForm};
use mouton_models::vae::Vae;
use mouton_train::checkpoint::{load_generator, Pick, Weights};
use mouton_train::config::{CriticArch, GeneratorArch, Overrides, Preset, TrainConfig};
use mouton_train::data::{self, TrainingData};
use mouton_train::encoding::{encode_from_run, reconstruct_from_run};
use mouton_train::trainer::{build, train, RunOptions};
use mouton_train::TrainError;

/// The VAE preset on 600 synthetic sheep: 540 to train on, 8 steps of 64 per epoch, a
/// checkpoint at each epoch's end, all kept.
fn cfg(ema: Option<f64>, epochs: u64) -> TrainConfig {
    Overrides {
        preset: Some(Preset::Vae),
        synthetic_count: Some(600),
        epochs: Some(epochs),
        keep_checkpoints: Some(10),
        seed: Some(3),
        swd_projections: Some(8),
        ema,
        ..Default::default()
    }
    .resolve()
    .unwrap()
}

fn trained(cfg: &TrainConfig, dir: &Path) -> TrainingData {
    let data = data::load(cfg).unwrap();
    train(cfg, &data, dir, &RunOptions::default(), &mut |_| {}).unwrap();
    data
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn reconstruction_costs_are_the_losses_the_vae_trained_with() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("vae");
    let cfg = cfg(None, 1);
    let data = trained(&cfg, &run);
    let images = data.validation.as_slice();
    let n = data.validation.len();
    assert_eq!(n, 60);
    let (r, loaded) = reconstruct_from_run(&run, Pick::Newest, Weights::Average, images).unwrap();
    assert_eq!((loaded.step, loaded.averaged), (8, false));

    // The same checkpoint's VAE, run by hand with the training loss's own functions.
    let mut vae: Vae<2, f32, Cpu> = build(&cfg, 0);
    load_generator(&run, Pick::Newest, Weights::Trained, &mut vae).unwrap();
    let dev = Cpu::default();
    let x = dev.tensor_from_vec(images.to_vec(), (n, 1usize, 28usize, 28usize));
    let (mu, logvar) = vae.encode(x).unwrap();
    // One chunk of images: the very same forward pass.
    assert_eq!(r.encoding.mu, mu.as_vec());
    assert_eq!(r.encoding.logvar, logvar.as_vec());
    // The losses in f64 (in f32 their sums over 47,040 pixels drift by about 1e-5).
    let kl = kl_divergence(
        mu.clone().to_dtype::<f64>(),
        logvar.to_dtype::<f64>(),
        KlForm::Exact,
    )
    .unwrap();
    let logits = vae.decode(mu).unwrap().reshape_like(&(n, 784usize));
    let probs = logits.clone().sigmoid().as_vec();
    let target = dev.tensor_from_vec(images.to_vec(), (n, 784usize));
    let bce = reconstruction_bce(logits.to_dtype::<f64>(), target.to_dtype::<f64>()).unwrap();
    // The loss is the batch mean of per-image sums; the module gives each image's sum.
    let (bce, kl) = (bce.array(), kl.array());
    assert!(rel(mean(&r.bce), bce) < 1e-10, "{} vs {bce}", mean(&r.bce));
    assert!(rel(mean(&r.kl), kl) < 1e-10, "{} vs {kl}", mean(&r.kl));
    // The images vary, so do their costs: these are per image, not a copied mean.
    let (lo, hi) = r
        .bce
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo > 1.0, "per-image BCE from {lo} to {hi}");
    let worst = probs
        .iter()
        .zip(&r.images)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "reconstructed pixels differ by {worst}");
}

#[test]
fn encodings_keep_each_image_in_its_place_across_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("vae");
    let data = trained(&cfg(None, 1), &run);
    // 300 images: a chunk of 256, then one of 44.
    let images = &data.train.as_slice()[..300 * 784];
    let (all, _) = reconstruct_from_run(&run, Pick::Newest, Weights::Average, images).unwrap();
    assert_eq!((all.encoding.len(), all.bce.len()), (300, 300));
    let enc = encode_from_run(&run, Pick::Newest, Weights::Average, images)
        .unwrap()
        .0;
    assert_eq!(enc, all.encoding);
    for i in [0, 1, 255, 256, 299] {
        let one = &images[i * 784..(i + 1) * 784];
        let (r, _) = reconstruct_from_run(&run, Pick::Newest, Weights::Average, one).unwrap();
        for k in 0..2 {
            let (a, b) = (r.encoding.mu[k], all.encoding.mu[2 * i + k]);
            assert!(
                (a - b).abs() < 1e-5,
                "image {i}: mu{k} {a} alone, {b} in the batch"
            );
        }
        assert!(rel(r.bce[0], all.bce[i]) < 1e-5, "image {i}");
        assert!(rel(r.kl[0], all.kl[i]) < 1e-4, "image {i}");
    }
}

#[test]
fn training_lowers_the_reconstruction_cost_of_held_out_images() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("vae");
    let data = trained(&cfg(None, 5), &run);
    let images = data.validation.as_slice();
    let cost = |step| {
        let (r, l) =
            reconstruct_from_run(&run, Pick::Step(step), Weights::Average, images).unwrap();
        assert_eq!(l.step, step);
        (mean(&r.bce), mean(&r.kl))
    };
    let (early, late) = (cost(8), cost(40));
    // An untrained decoder costs about 784 ln 2 = 543 nats per image.
    assert!(late.0 < early.0 && early.0 < 543.0, "{early:?} -> {late:?}");
    assert!(late.1 > 0.0, "{late:?}");
}

#[test]
fn the_moving_average_encodes_unless_told() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("vae");
    let data = trained(&cfg(Some(0.9), 1), &run);
    let images = &data.validation.as_slice()[..10 * 784];
    let (avg, la) = encode_from_run(&run, Pick::Newest, Weights::Average, images).unwrap();
    let (own, lt) = encode_from_run(&run, Pick::Newest, Weights::Trained, images).unwrap();
    assert!(la.averaged && !lt.averaged);
    assert_ne!(avg.mu, own.mu);
}

#[test]
fn only_a_vae_run_encodes_and_only_whole_images() {
    let tmp = tempfile::tempdir().unwrap();
    let gan = tmp.path().join("gan");
    let mut c = TrainConfig::preset(Preset::Sheep1);
    (c.generator, c.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
    (c.synthetic_count, c.batch_size, c.max_steps) = (80, 16, Some(1));
    train(
        &c,
        &data::load(&c).unwrap(),
        &gan,
        &RunOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let images = vec![0.5f32; 2 * 784];
    let err = encode_from_run(&gan, Pick::Newest, Weights::Average, &images).unwrap_err();
    assert!(matches!(err, TrainError::RunDir(_)) && err.is_bad_input());
    assert!(err.to_string().contains("is not a VAE"), "{err}");
    let err = reconstruct_from_run(&gan, Pick::Newest, Weights::Average, &images).unwrap_err();
    assert!(err.to_string().contains("is not a VAE"), "{err}");

    let vae = tmp.path().join("vae");
    trained(&cfg(None, 1), &vae);
    for bad in [&images[..783], &[][..]] {
        let err = encode_from_run(&vae, Pick::Newest, Weights::Average, bad).unwrap_err();
        assert!(err.to_string().contains("28x28 images"), "{err}");
    }
    // A step that was never saved: the error lists those on disk.
    let err = encode_from_run(&vae, Pick::Step(3), Weights::Average, &images).unwrap_err();
    assert!(err.to_string().contains("there are steps 8"), "{err}");
}

/// Every latent size the trainer builds: a run trains, saves the size in `config.toml`, and
/// every reader of the run (sampling, encoding, reconstruction) builds that size again: the
/// encodings are the checkpoint's own network's, bit for bit, and the decoded samples are
/// the decoder's at the run's latent length.
#[test]
fn every_latent_size_trains_and_is_read_back_at_its_size() {
    use mouton_train::config::VAE_LATENT_DIMS;
    use mouton_train::sampling::{generate_from_run, latent_of, run_latent};
    let tmp = tempfile::tempdir().unwrap();
    for l in VAE_LATENT_DIMS {
        let run = tmp.path().join(format!("vae{l}"));
        let cfg = Overrides {
            preset: Some(Preset::Vae),
            latent_dim: Some(l),
            synthetic_count: Some(80),
            batch_size: Some(16),
            max_steps: Some(2),
            seed: Some(5),
            swd_projections: Some(8),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let data = trained(&cfg, &run);
        let text = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(text.contains(&format!("latent_dim = {l}\n")), "{text}");
        assert_eq!(run_latent(&run).unwrap(), l);
        let images = &data.validation.as_slice()[..3 * 784];
        let (enc, loaded) = encode_from_run(&run, Pick::Newest, Weights::Average, images).unwrap();
        assert_eq!((enc.latent, enc.len(), loaded.step), (l, 3, 2));
        // The run's network, loaded by hand at its size.
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(images.to_vec(), (3usize, 1usize, 28usize, 28usize));
        let z = latent_of(1, 0, 5, l);
        let (mu, logvar, decoded) = mouton_train::with_vae_latent!(l, L => {
            let mut vae: Vae<L, f32, Cpu> = build(&cfg, 0);
            load_generator(&run, Pick::Newest, Weights::Trained, &mut vae).unwrap();
            let (mu, logvar) = vae.encode(x).unwrap();
            let logits = vae.decode(dev.tensor_from_vec(z.clone(), (5usize, l))).unwrap();
            Ok::<_, TrainError>((mu.as_vec(), logvar.as_vec(), logits.sigmoid().as_vec()))
        })
        .unwrap();
        assert_eq!((enc.mu, enc.logvar), (mu, logvar), "latent {l}");
        let (samples, _) = generate_from_run(&run, Pick::Newest, Weights::Average, &z).unwrap();
        assert_eq!(samples.len(), 5 * 784);
        let worst = samples
            .iter()
            .zip(&decoded)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "latent {l}: samples differ by {worst}");
        // A vector of another length is not a latent point of this run.
        let short = latent_of(1, 0, 1, l + 1);
        assert!(generate_from_run(&run, Pick::Newest, Weights::Average, &short).is_err());
    }
}

/// Sizes the trainer does not build, and a latent size for a GAN, are refused before
/// anything is written; a `config.toml` from before `latent_dim` existed reads as 2.
#[test]
fn other_latent_sizes_are_refused_and_old_runs_read_as_two() {
    let tmp = tempfile::tempdir().unwrap();
    for (preset, l, says) in [
        (Preset::Vae, 3, "latent_dim: must be 2, 4, 8 or 16"),
        (Preset::Vae, 32, "latent_dim: must be 2, 4, 8 or 16"),
        (Preset::Sheep2, 2, "latent_dim: sets the VAE's latent size"),
    ] {
        let mut cfg = TrainConfig::preset(preset);
        (cfg.synthetic_count, cfg.max_steps, cfg.latent_dim) = (200, Some(1), Some(l));
        let run = tmp.path().join(format!("{l}"));
        let data = data::load(&TrainConfig {
            latent_dim: None,
            ..cfg.clone()
        })
        .unwrap();
        let err = train(&cfg, &data, &run, &RunOptions::default(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        assert!(!run.exists(), "{l}: {run:?} was created");
    }
    let cfg = TrainConfig::preset(Preset::Vae);
    let old = cfg.to_toml().replace("latent_dim = 2\n", "");
    assert_ne!(old, cfg.to_toml());
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, old).unwrap();
    let loaded = TrainConfig::load(&path).unwrap();
    assert_eq!((loaded.latent_dim, loaded.vae_latent()), (None, 2));
}
