//! Training runs on small synthetic data: resume equivalence, the NaN guard, checkpoint
//! errors, every loss running, and the run directory's files.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mouton_models::weights::WeightsFile;
use mouton_train::config::{LossKind, Overrides, Preset, TrainConfig};
use mouton_train::trainer::{train, Event, RunOptions};
use mouton_train::{checkpoint, data, metrics, TrainError};

fn small(loss: Option<LossKind>, epochs: u64) -> TrainConfig {
    Overrides {
        preset: Some(Preset::Sheep1),
        loss,
        synthetic_count: Some(72),
        validation_fraction: Some(0.2),
        batch_size: Some(16),
        epochs: Some(epochs),
        seed: Some(9),
        swd_projections: Some(8),
        ..Default::default()
    }
    .resolve()
    .unwrap()
}

fn run(
    cfg: &TrainConfig,
    dir: &Path,
    opts: &RunOptions,
) -> Result<mouton_train::trainer::Summary, TrainError> {
    let data = data::load(cfg).unwrap();
    train(cfg, &data, dir, opts, &mut |_| {})
}

/// Images for `z` from the newest checkpoint in `dir`, with what was loaded.
fn newest(dir: &Path, z: &[f32]) -> (Vec<f32>, checkpoint::Loaded) {
    use checkpoint::{Pick, Weights};
    mouton_train::sampling::generate_from_run(dir, Pick::Newest, Weights::Average, z).unwrap()
}

/// Every tensor of a checkpoint (names, shapes, values) and its metadata that matters.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let f = WeightsFile::open(path).unwrap();
    let mut out: Vec<_> = f
        .entries()
        .into_iter()
        .map(|(name, shape)| {
            let v: Vec<f32> = f.tensor(&name, &shape).unwrap();
            (name, shape, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    for k in ["step", "opt_g.t", "opt_d.t"] {
        out.push((
            k.into(),
            vec![],
            vec![f.metadata(k).unwrap().parse().unwrap()],
        ));
    }
    out
}

#[test]
fn one_epoch_then_resume_equals_two_epochs_bit_for_bit() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let two = small(None, 2);
    let s = run(&two, a.path(), &RunOptions::default()).unwrap();
    assert_eq!(
        s.steps, 6,
        "58 training images, batch 16: 3 steps per epoch"
    );

    run(&small(None, 1), b.path(), &RunOptions::default()).unwrap();
    let resumed = run(
        &two,
        b.path(),
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.steps, 6);
    // Same step, same bytes: weights, both optimizers' moments and step counts.
    let (ca, cb) = (
        checkpoint::path_for(a.path(), 6),
        checkpoint::path_for(b.path(), 6),
    );
    let (ta, tb) = (tensors(&ca), tensors(&cb));
    assert_eq!(
        ta.len(),
        8 + 8 + 16 + 16 + 3,
        "weights, Adam's m and v for both networks"
    );
    assert!(ta == tb, "resumed run differs from the uninterrupted one");
    // The metrics are the same records (timings aside).
    let (sa, _) = metrics::read(&a.path().join("metrics.jsonl")).unwrap();
    let (sb, eb) = metrics::read(&b.path().join("metrics.jsonl")).unwrap();
    assert_eq!(sa.len(), 6);
    assert_eq!(sb.len(), 6);
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(
            (x.step, x.d_loss, x.g_loss, x.grad_norm_d),
            (y.step, y.d_loss, y.g_loss, y.grad_norm_d)
        );
    }
    assert_eq!(eb.len(), 2);
    for f in [
        "config.toml",
        "loss.png",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
    ] {
        assert!(b.path().join(f).is_file(), "{f} missing");
    }
    let f = WeightsFile::open(&cb).unwrap();
    assert_eq!(f.metadata("step"), Some("6"));
    assert_eq!(f.metadata("opt_g.t"), Some("6"));
    // A second run in the same directory without --resume is refused.
    let err = run(&two, a.path(), &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
}

#[test]
fn the_same_seed_gives_the_same_weights_and_another_seed_does_not() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut cfg = small(None, 1);
    cfg.max_steps = Some(2);
    run(&cfg, dirs[0].path(), &RunOptions::default()).unwrap();
    run(&cfg, dirs[1].path(), &RunOptions::default()).unwrap();
    cfg.seed = 10;
    run(&cfg, dirs[2].path(), &RunOptions::default()).unwrap();
    let p = |i: usize| tensors(&checkpoint::path_for(dirs[i].path(), 2));
    assert!(p(0) == p(1), "same seed, different weights");
    assert!(p(0) != p(2), "different seeds, same weights");
}

#[test]
fn nan_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(None, 2);
    let opts = RunOptions {
        resume: false,
        inject_nan_at_step: Some(5),
        ..Default::default()
    };
    let err = run(&cfg, dir.path(), &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TrainError::NonFinite { step: 5, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("step 5") && msg.contains("critic loss"),
        "{msg}"
    );
    let cps: Vec<u64> = checkpoint::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(cps, [3], "the epoch-1 checkpoint stays, nothing after it");
    // It resumes from there.
    let s = run(
        &cfg,
        dir.path(),
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.steps, 6);
}

#[test]
fn corrupt_or_foreign_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(None, 1);
    run(&cfg, dir.path(), &RunOptions::default()).unwrap();
    let cp = checkpoint::path_for(dir.path(), 3);
    let bytes = std::fs::read(&cp).unwrap();
    std::fs::write(&cp, &bytes[..bytes.len() / 2]).unwrap();
    let resume = RunOptions {
        resume: true,
        ..Default::default()
    };
    let err = run(&small(None, 2), dir.path(), &resume).unwrap_err();
    assert!(err.is_bad_input());
    let msg = err.to_string();
    assert!(
        msg.contains("step_000000003.safetensors") && msg.contains("not a valid safetensors"),
        "{msg}"
    );

    // A weights file that is not a checkpoint.
    let mut w = mouton_models::weights::WeightsWriter::new();
    w.add::<f32>("x", vec![1], &[0.0]);
    w.write(&cp).unwrap();
    let err = run(&small(None, 2), dir.path(), &resume).unwrap_err();
    assert!(err.to_string().contains("not a mouton checkpoint"), "{err}");
}

#[test]
fn every_loss_trains_a_step_with_finite_numbers() {
    for loss in [
        LossKind::Gan,
        LossKind::Nsgan,
        LossKind::Lsgan,
        LossKind::Hinge,
        LossKind::Wgan,
        LossKind::WganGp,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = small(Some(loss), 1);
        cfg.n_critic = 2;
        cfg.batch_size = 8;
        cfg.max_steps = Some(2);
        run(&cfg, dir.path(), &RunOptions::default()).unwrap();
        let (steps, epochs) = metrics::read(&dir.path().join("metrics.jsonl")).unwrap();
        assert_eq!(steps.len(), 2, "{loss:?}");
        for s in &steps {
            assert!(
                s.d_loss.is_finite() && s.g_loss.is_finite() && s.grad_norm_d > 0.0,
                "{loss:?}: {s:?}"
            );
            assert_eq!(s.gp.is_some(), loss == LossKind::WganGp);
        }
        assert_eq!(epochs.len(), 1);
        assert!(epochs[0].swd.is_some_and(|s| s.is_finite() && s > 0.0));
        if loss == LossKind::Wgan {
            let f = WeightsFile::open(&checkpoint::path_for(dir.path(), 2)).unwrap();
            let w: Vec<f32> = f.tensor("d.conv2.weight", &[128, 64, 4, 4]).unwrap();
            assert!(w.iter().all(|v| v.abs() <= 0.01), "WGAN clips the critic");
        }
    }
}

#[test]
fn too_little_data_is_an_error() {
    let mut cfg = small(None, 1);
    cfg.synthetic_count = 10;
    let err = data::load(&cfg).unwrap_err();
    assert!(
        err.to_string().contains("batch_size x n_critic = 16"),
        "{err}"
    );
}

#[test]
fn fully_connected_architectures_train_mixed_with_the_convolutional_ones() {
    use mouton_train::config::{CriticArch, GeneratorArch};
    for (g, d, loss) in [
        (GeneratorArch::MlpG, CriticArch::MlpD, LossKind::WganGp),
        (GeneratorArch::MlpG, CriticArch::Sheep1D, LossKind::Nsgan),
        (GeneratorArch::Sheep1G, CriticArch::MlpD, LossKind::Hinge),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = small(Some(loss), 1);
        cfg.generator = g;
        cfg.critic = d;
        cfg.n_critic = 1;
        cfg.max_steps = Some(2);
        run(&cfg, dir.path(), &RunOptions::default()).unwrap();
        let f = WeightsFile::open(&checkpoint::path_for(dir.path(), 2)).unwrap();
        if g == GeneratorArch::MlpG {
            // Batch-norm running statistics are saved with the weights.
            let rv: Vec<f32> = f.tensor("g.bn2.running_var", &[256]).unwrap();
            assert!(rv.iter().any(|&v| v != 1.0), "running variance updated");
        }
        let z = mouton_train::sampling::latent(1, 0, 4);
        let (images, loaded) = newest(dir.path(), &z);
        assert_eq!((images.len(), loaded.step), (4 * 784, 2));
        assert!(images.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

/// The VAE preset on 72 synthetic sheep (58 for training, batch 16: 3 steps per epoch).
fn small_vae(epochs: u64, seed: u64) -> TrainConfig {
    let mut c = Overrides {
        preset: Some(Preset::Vae),
        synthetic_count: Some(72),
        validation_fraction: Some(0.2),
        batch_size: Some(16),
        epochs: Some(epochs),
        seed: Some(seed),
        swd_projections: Some(8),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    c.lr_g = 3e-3;
    c
}

#[test]
fn the_vae_trains_resumes_exactly_and_draws() {
    let vae = |epochs| small_vae(epochs, 2);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&vae(4), a.path(), &RunOptions::default()).unwrap();
    run(&vae(2), b.path(), &RunOptions::default()).unwrap();
    run(
        &vae(4),
        b.path(),
        &RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        tensors(&checkpoint::path_for(a.path(), 12))
            == tensors(&checkpoint::path_for(b.path(), 12))
    );
    let (steps, _) = metrics::read(&a.path().join("metrics.jsonl")).unwrap();
    let first: f64 = steps[..3].iter().map(|s| s.recon.unwrap()).sum();
    let last: f64 = steps[9..].iter().map(|s| s.recon.unwrap()).sum();
    assert!(last < 0.8 * first, "reconstruction {first} -> {last}");
    assert!(steps.iter().all(|s| s.kl.unwrap() >= 0.0));
    let z = mouton_train::sampling::latent_of(
        1,
        0,
        3,
        mouton_train::sampling::run_latent(a.path()).unwrap(),
    );
    let (images, _) = newest(a.path(), &z);
    assert_eq!(images.len(), 3 * 784);
    // The VAE loss is not for GAN generators, and the other way round.
    let mut bad = vae(1);
    bad.generator = mouton_train::config::GeneratorArch::Sheep1G;
    assert!(bad.validate().is_err());
}

#[test]
fn a_kl_warm_up_weighs_each_step_as_scheduled_and_resumes_exactly() {
    let vae = |epochs, max_steps, kl_weight, kl_warmup| TrainConfig {
        max_steps,
        kl_weight,
        kl_warmup,
        ..small_vae(epochs, 4)
    };
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let fresh = RunOptions::default();
    // 58 training images, batch 16: 3 steps per epoch, so 3 epochs ramp over 9 steps.
    let warm = vae(4, None, 2.0, Some(3.0));
    run(&warm, dirs[0].path(), &fresh).unwrap();
    let (steps, _) = metrics::read(&dirs[0].path().join("metrics.jsonl")).unwrap();
    assert_eq!(steps.len(), 12);
    for (i, s) in steps.iter().enumerate() {
        let w = s.kl_weight.unwrap();
        assert_eq!(w, 2.0 * (i as f64 / 9.0).min(1.0), "step {}", s.step);
        assert_eq!(s.g_loss, w * s.kl.unwrap());
        // The weight is the one the loss was built with: total = reconstruction + w KL
        // (summed in f32).
        let total = s.recon.unwrap() + w * s.kl.unwrap();
        assert!((s.d_loss - total).abs() <= 1e-5 * total, "step {}", s.step);
    }
    assert!(steps[8].kl_weight < Some(2.0) && steps[9].kl_weight == Some(2.0));

    // The first step has no KL term: it updates the weights as a run without one does.
    run(&vae(1, Some(1), 2.0, Some(3.0)), dirs[1].path(), &fresh).unwrap();
    run(&vae(1, Some(1), 0.0, None), dirs[2].path(), &fresh).unwrap();
    run(&vae(1, Some(1), 2.0, None), dirs[3].path(), &fresh).unwrap();
    let first = |d: &tempfile::TempDir| tensors(&checkpoint::path_for(d.path(), 1));
    assert!(
        first(&dirs[1]) == first(&dirs[2]),
        "step 1 of a warm-up has KL weight 0"
    );
    assert!(
        first(&dirs[1]) != first(&dirs[3]),
        "the KL term moves the first step"
    );

    // Stopped inside the ramp (step 6 of 9) and resumed: the same weights bit for bit.
    run(&vae(2, None, 2.0, Some(3.0)), dirs[4].path(), &fresh).unwrap();
    let resume = RunOptions {
        resume: true,
        ..Default::default()
    };
    run(&warm, dirs[4].path(), &resume).unwrap();
    assert!(
        tensors(&checkpoint::path_for(dirs[0].path(), 12))
            == tensors(&checkpoint::path_for(dirs[4].path(), 12))
    );

    // Only a VAE has a KL term to ramp, and the ramp is a number of epochs.
    let mut bad = small(None, 1);
    bad.kl_warmup = Some(1.0);
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("kl_warmup: ramps up a VAE's KL term"), "{err}");
    for w in [-1.0, f64::NAN, f64::INFINITY, 2e9] {
        let mut bad = vae(1, None, 1.0, None);
        bad.kl_warmup = Some(w);
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("kl_warmup: must be a number of epochs"),
            "{w}: {err}"
        );
    }
    // 0 epochs: no ramp.
    assert_eq!(vae(1, None, 1.0, Some(0.0)).kl_weight_at(0, 3), 1.0);
}

#[test]
fn dcgan_trains_on_signed_pixels_and_wgan_gp_refuses_its_discriminator() {
    use mouton_train::config::{CriticArch, GeneratorArch};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small(Some(LossKind::Nsgan), 1);
    cfg.generator = GeneratorArch::DcganG;
    cfg.critic = CriticArch::DcganD;
    cfg.max_steps = Some(2);
    run(&cfg, dir.path(), &RunOptions::default()).unwrap();
    let z = mouton_train::sampling::latent_of(1, 0, 2, 100);
    let (images, _) = newest(dir.path(), &z);
    assert!(
        images.iter().all(|v| (0.0..=1.0).contains(v)),
        "tanh output mapped to [0, 1]"
    );
    cfg.loss = LossKind::WganGp;
    let err = cfg.validate().unwrap_err();
    assert!(err.to_string().contains("dcgan-d"), "{err}");
}

#[test]
fn builds_without_cuda_refuse_cuda_runs_and_say_how_to_get_one() {
    use mouton_train::config::{CriticArch, GeneratorArch};
    use mouton_train::trainer::DeviceChoice;
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        device: DeviceChoice::Cuda(0),
        ..Default::default()
    };
    // Every architecture has its CUDA kernels (a CUDA build runs them: scripts/gpu-check.sh);
    // a build without the feature says how to get one, and writes nothing.
    if !cfg!(feature = "cuda") {
        let mut dcgan = small(None, 1);
        dcgan.generator = GeneratorArch::DcganG;
        dcgan.critic = CriticArch::DcganD;
        let vae = Overrides {
            preset: Some(Preset::Vae),
            synthetic_count: Some(72),
            validation_fraction: Some(0.2),
            batch_size: Some(16),
            epochs: Some(1),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        for (name, cfg) in [("a", small(None, 1)), ("b", dcgan), ("v", vae)] {
            let err = run(&cfg, &dir.path().join(name), &opts).unwrap_err();
            assert!(matches!(err, TrainError::Device(_)), "{err}");
            assert!(
                err.to_string().contains("built without CUDA support"),
                "{err}"
            );
            assert!(
                !dir.path().join(name).join("metrics.jsonl").exists(),
                "nothing is written when the device cannot be used"
            );
        }
    }
    // TF32 and cuDNN are CUDA settings: asking for either on the CPU is a configuration error.
    let tf32 = RunOptions {
        tf32: true,
        ..Default::default()
    };
    let cudnn = RunOptions {
        cudnn: true,
        ..Default::default()
    };
    for (opts, name, sub) in [(tf32, "TF32", "c"), (cudnn, "cuDNN", "d")] {
        let err = run(&small(None, 1), &dir.path().join(sub), &opts).unwrap_err();
        assert!(matches!(err, TrainError::Config(_)), "{err}");
        assert!(err.to_string().contains(name), "{err}");
        assert!(!dir.path().join(sub).join("metrics.jsonl").exists());
    }
}

/// Runs `cfg` in `dir`, setting the stop request when step `stop_at` ends; returns the summary
/// and the steps of the mid-epoch checkpoints reported.
fn run_stopping_at(
    cfg: &TrainConfig,
    dir: &Path,
    resume: bool,
    stop_at: Option<u64>,
) -> (mouton_train::trainer::Summary, Vec<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        resume,
        stop: Some(stop.clone()),
        ..Default::default()
    };
    let data = data::load(cfg).unwrap();
    let mut saved = Vec::new();
    let summary = train(cfg, &data, dir, &opts, &mut |e| match e {
        Event::Step(s) if Some(s.step) == stop_at => stop.store(true, Ordering::SeqCst),
        Event::Checkpoint(step, path) => {
            assert!(path.is_file());
            saved.push(step);
        }
        _ => {}
    })
    .unwrap();
    (summary, saved)
}

#[test]
fn a_stop_request_checkpoints_inside_the_epoch_and_the_resumed_run_matches_bit_for_bit() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let two = small(None, 2); // 3 steps per epoch, 6 in all
    run(&two, a.path(), &RunOptions::default()).unwrap();

    let (s, saved) = run_stopping_at(&two, b.path(), false, Some(2));
    assert!(s.interrupted);
    assert_eq!((s.steps, saved), (2, vec![2]));
    assert_eq!(s.checkpoint, Some(checkpoint::path_for(b.path(), 2)));
    assert!(s.last_epoch.is_none(), "no epoch ended");
    let (steps, epochs) = metrics::read(&b.path().join("metrics.jsonl")).unwrap();
    assert_eq!((steps.len(), epochs.len()), (2, 0));

    let (s, saved) = run_stopping_at(&two, b.path(), true, None);
    assert!(!s.interrupted);
    assert_eq!((s.steps, saved), (6, vec![]));
    assert!(
        tensors(&checkpoint::path_for(a.path(), 6)) == tensors(&checkpoint::path_for(b.path(), 6)),
        "the run stopped at step 2 and resumed differs from the uninterrupted one"
    );
    let (sa, ea) = metrics::read(&a.path().join("metrics.jsonl")).unwrap();
    let (sb, eb) = metrics::read(&b.path().join("metrics.jsonl")).unwrap();
    let key = |r: &mouton_train::metrics::StepRecord| (r.step, r.d_loss, r.g_loss, r.grad_norm_d);
    assert_eq!(
        sa.iter().map(key).collect::<Vec<_>>(),
        sb.iter().map(key).collect::<Vec<_>>()
    );
    let ekey = |r: &mouton_train::metrics::EpochRecord| (r.epoch, r.step, r.swd);
    assert_eq!(
        ea.iter().map(ekey).collect::<Vec<_>>(),
        eb.iter().map(ekey).collect::<Vec<_>>()
    );
}

#[test]
fn a_stop_request_at_an_epoch_end_reuses_its_checkpoint_and_at_the_last_step_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let two = small(None, 2);
    let (s, saved) = run_stopping_at(&two, dir.path(), false, Some(3));
    assert!(s.interrupted);
    assert_eq!(
        (s.steps, saved),
        (3, vec![]),
        "the epoch's checkpoint serves"
    );
    assert_eq!(s.last_epoch.map(|e| e.epoch), Some(1));
    let listed: Vec<u64> = checkpoint::list(dir.path())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, [3]);
    // Asked during its last step, the run simply ends.
    let (s, saved) = run_stopping_at(&two, dir.path(), true, Some(6));
    assert!(!s.interrupted);
    assert_eq!((s.steps, saved), (6, vec![]));
}

#[test]
fn a_run_directory_in_use_by_another_training_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(None, 1);
    let held = mouton_train::run_lock::lock(dir.path()).unwrap();
    for resume in [false, true] {
        let opts = RunOptions {
            resume,
            ..Default::default()
        };
        let err = run(&cfg, dir.path(), &opts).unwrap_err();
        assert!(err.is_bad_input(), "{err}");
        assert!(
            err.to_string().contains("is in use by another training"),
            "{err}"
        );
        let err = mouton_train::trainer::check_run_dir(dir.path(), resume).unwrap_err();
        assert!(
            err.to_string().contains("is in use by another training"),
            "{err}"
        );
    }
    assert!(!dir.path().join("config.toml").exists(), "nothing written");
    drop(held);
    run(&cfg, dir.path(), &RunOptions::default()).unwrap();
    // The lock is released when the run ends, so the next one may go on.
    let resumed = RunOptions {
        resume: true,
        ..Default::default()
    };
    run(&small(None, 2), dir.path(), &resumed).unwrap();
}

#[test]
fn checkpoint_every_writes_checkpoints_inside_epochs_that_resume_exactly() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let two = small(None, 2);
    let every2 = TrainConfig {
        checkpoint_every: Some(2),
        keep_checkpoints: 10,
        ..two.clone()
    };
    let (s, saved) = run_stopping_at(&every2, a.path(), false, None);
    assert_eq!(
        (s.steps, saved),
        (6, vec![2, 4]),
        "6 ends epoch 2: its own checkpoint"
    );
    let listed: Vec<u64> = checkpoint::list(a.path())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, [2, 3, 4, 6]);
    let end = tensors(&checkpoint::path_for(a.path(), 6));
    // The same run without periodic checkpoints ends on the same bytes...
    run(&two, b.path(), &RunOptions::default()).unwrap();
    assert!(end == tensors(&checkpoint::path_for(b.path(), 6)));
    // ...and so does one resumed from step 4, inside epoch 2.
    std::fs::remove_file(checkpoint::path_for(a.path(), 6)).unwrap();
    let (s, _) = run_stopping_at(&every2, a.path(), true, None);
    assert_eq!(s.steps, 6);
    assert!(end == tensors(&checkpoint::path_for(a.path(), 6)));

    let zero = TrainConfig {
        checkpoint_every: Some(0),
        ..two
    };
    let err = zero.validate().unwrap_err().to_string();
    assert!(
        err.contains("checkpoint_every: must be at least 1"),
        "{err}"
    );
}
