//! `metrics.jsonl` keeps every value exactly through a resume's rewrite.

use mouton_train::metrics::{append, read, truncate_after, EpochRecord, StepRecord};

fn step(k: u64) -> StepRecord {
    // Values whose shortest decimal form needs all 17 digits, as measured losses do.
    let v = |i: u64| 0.1 + (k * 7 + i) as f64 * std::f64::consts::PI / 1e3;
    StepRecord {
        kind: "step".into(),
        step: k,
        epoch: 1,
        d_loss: v(0),
        g_loss: v(1),
        gp: Some(v(2)),
        d_real: v(3) * 1e-3,
        d_fake: -v(4),
        grad_norm_d: v(5),
        grad_norm_g: v(6),
        images_per_s: 18.867144144951787 + k as f64,
        recon: None,
        kl: None,
        kl_weight: None,
    }
}

#[test]
fn truncating_after_a_resume_keeps_every_value_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    for k in 1..=40 {
        append(&path, &step(k)).unwrap();
        if k % 20 == 0 {
            let e = EpochRecord {
                kind: "epoch".into(),
                step: k,
                epoch: k / 20,
                swd: Some(0.014133804477751257),
                swd_real_baseline: Some(3.576199809),
                diversity_ratio: None,
                swd_trained: None,
                seconds: 3.576199809 + k as f64,
            };
            append(&path, &e).unwrap();
        }
    }
    let before = std::fs::read(&path).unwrap();
    truncate_after(&path, 40).unwrap(); // nothing past step 40: the same file
    assert_eq!(
        String::from_utf8(std::fs::read(&path).unwrap()).unwrap(),
        String::from_utf8(before.clone()).unwrap()
    );
    truncate_after(&path, 20).unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(before.starts_with(&after) && after.len() < before.len());
    let (steps, epochs) = read(&path).unwrap();
    assert_eq!(steps, (1..=20).map(step).collect::<Vec<_>>());
    assert_eq!(epochs.len(), 1);
}
