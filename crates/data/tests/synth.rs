//! The synthetic flock: deterministic, valid simplified drawings, ink like real sheep.

use mouton_data::{synth_flock, synth_sheep, RasterOptions, Rasterizer};

#[test]
fn deterministic_valid_and_varied() {
    let a = synth_flock(200, 11);
    assert_eq!(a, synth_flock(200, 11), "same seed, same flock");
    assert_ne!(
        a[0].strokes,
        synth_flock(1, 12)[0].strokes,
        "other seed, other sheep"
    );
    let mut keys = std::collections::HashSet::new();
    for d in &a {
        assert!(keys.insert(d.meta.key_id), "key_ids are distinct");
        assert!(
            d.strokes.len() >= 6 && d.strokes.len() <= 12,
            "{}",
            d.strokes.len()
        );
        let (x0, y0, x1, y1) = d.strokes.bounds().unwrap();
        assert!(x0 >= 0.0 && y0 >= 0.0 && x1 <= 255.0 && y1 <= 255.0);
        // Scaled to 255 before RDP, which may drop the extreme point: Google's files show
        // maxima of 248..=255 for the same reason.
        assert!(
            x1.max(y1) >= 245.0,
            "not scaled like Google's: max {}",
            x1.max(y1)
        );
        assert!(d
            .strokes
            .x
            .iter()
            .chain(&d.strokes.y)
            .all(|v| v.fract() == 0.0));
        for k in 0..d.strokes.len() {
            assert!(
                d.strokes.stroke(k).0.len() >= 2,
                "no one-point strokes, as in Google's files"
            );
        }
    }
    // Variety: sheep are wider than tall, so after scaling the heights show the proportions.
    let heights: Vec<f32> = a.iter().map(|d| d.strokes.bounds().unwrap().3).collect();
    let (lo, hi) = heights
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &w| (l.min(w), h.max(w)));
    assert!(hi - lo > 40.0, "heights {lo}..{hi}");
}

#[test]
fn ink_is_like_real_sheep() {
    // Real sheep (Google's first 1000 bitmaps): mean pixel 45.4, 29.4 % of pixels inked.
    let mut r = Rasterizer::new(RasterOptions::default()).unwrap();
    let mut img = vec![0u8; 784];
    let (mut sum, mut inked) = (0u64, 0u64);
    let n = 500;
    for i in 0..n {
        r.render(&synth_sheep(5, i).strokes, &mut img);
        sum += img.iter().map(|&v| v as u64).sum::<u64>();
        inked += img.iter().filter(|&&v| v > 0).count() as u64;
    }
    let mean = sum as f64 / (n as f64 * 784.0);
    let share = inked as f64 / (n as f64 * 784.0);
    println!(
        "synthetic sheep: mean pixel {mean:.1}, {:.1} % inked (real: 45.4, 29.4 %)",
        100.0 * share
    );
    assert!((30.0..65.0).contains(&mean), "{mean}");
    assert!((0.18..0.42).contains(&share), "{share}");
}
