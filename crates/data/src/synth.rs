//! Synthetic sheep: a seeded procedural doodle generator, so that mouton runs offline.
//!
//! Each sheep is drawn the way people draw one in Quick, Draw!: a woolly cloud of arcs for the
//! body, a head at one end with ears and sometimes an eye, four legs, sometimes a tail; size,
//! proportions, facing, tilt and hand jitter vary. The dense "raw" strokes then go through
//! Google's own simplification, so the result is a genuine simplified drawing (0..=255, RDP).
//! These are stand-ins, not real data: for real sheep, see README (Quick, Draw! dataset).

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{simplify, Drawing, Meta, Strokes, Timestamp};

/// What to tell a user who is given synthetic sheep.
pub const SYNTH_NOTICE: &str = "note: these are synthetic stand-ins drawn by a program, not \
real Quick, Draw! drawings. For the real ones (CC BY 4.0, Google), download \
https://storage.googleapis.com/quickdraw_dataset/full/simplified/sheep.ndjson (or \
full/numpy_bitmap/sheep.npy) and pass it with --data.";

/// Country code marking synthetic drawings (ISO 3166 reserves ZZ for user purposes).
pub const SYNTH_COUNTRY: &str = "ZZ";

struct Pen {
    rng: ChaCha8Rng,
    strokes: Strokes,
    /// Hand wobble amplitude, in raw units.
    jitter: f64,
    /// Tilt of the whole drawing, radians.
    tilt: f64,
}

impl Pen {
    fn stroke(&mut self, pts: &[(f64, f64)]) {
        let (c, s) = (self.tilt.cos(), self.tilt.sin());
        let mut xs = Vec::with_capacity(pts.len());
        let mut ys = Vec::with_capacity(pts.len());
        // Wobble that drifts smoothly, like a hand, rather than white noise.
        let (mut wx, mut wy) = (0.0, 0.0);
        for &(x, y) in pts {
            wx = 0.8 * wx + self.rng.gen_range(-1.0..1.0) * self.jitter;
            wy = 0.8 * wy + self.rng.gen_range(-1.0..1.0) * self.jitter;
            let (x, y) = (x + wx, y + wy);
            xs.push((500.0 + x * c - y * s) as f32);
            ys.push((500.0 + x * s + y * c) as f32);
        }
        self.strokes.push_stroke(&xs, &ys, None);
    }
}

/// Points along an arc of an ellipse centred at (cx, cy), from angle a0 to a1, about every 3 units.
fn arc(cx: f64, cy: f64, rx: f64, ry: f64, a0: f64, a1: f64) -> Vec<(f64, f64)> {
    let n = ((a1 - a0).abs() * rx.max(ry) / 3.0).ceil().max(2.0) as usize;
    (0..=n)
        .map(|k| {
            let a = a0 + (a1 - a0) * k as f64 / n as f64;
            (cx + rx * a.cos(), cy + ry * a.sin())
        })
        .collect()
}

fn line(p: (f64, f64), q: (f64, f64)) -> Vec<(f64, f64)> {
    let n = (((q.0 - p.0).hypot(q.1 - p.1)) / 3.0).ceil().max(1.0) as usize;
    (0..=n)
        .map(|k| {
            let t = k as f64 / n as f64;
            (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t)
        })
        .collect()
}

/// Synthetic sheep number `index` of the stream seeded by `seed`: the same pair always gives the
/// same drawing, on any machine.
///
/// ```
/// let a = mouton_data::synth_sheep(7, 0);
/// assert_eq!(a, mouton_data::synth_sheep(7, 0));
/// assert_ne!(a.strokes, mouton_data::synth_sheep(7, 1).strokes);
/// assert!(a.strokes.len() >= 6); // body, head, four legs at least
/// let (x0, y0, x1, y1) = a.strokes.bounds().unwrap();
/// assert!(x0 >= 0.0 && y0 >= 0.0 && x1.max(y1) <= 255.0);
/// assert_eq!(a.meta.countrycode, "ZZ");
/// ```
pub fn synth_sheep(seed: u64, index: u64) -> Drawing {
    // SplitMix-style mixing so neighbouring indices give unrelated streams.
    let mixed = (seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9)
        ^ index.wrapping_mul(0x94d0_49bb_1331_11eb);
    let mut rng = ChaCha8Rng::seed_from_u64(mixed);
    let scale = rng.gen_range(0.7..1.3);
    let tilt = rng.gen_range(-0.12..0.12);
    let jitter = rng.gen_range(0.3..1.5);
    let mut pen = Pen {
        rng: ChaCha8Rng::seed_from_u64(mixed.rotate_left(17)),
        strokes: Strokes::default(),
        jitter,
        tilt,
    };
    let face: f64 = if rng.gen_bool(0.75) { -1.0 } else { 1.0 }; // most sheep face left
    let (rx, ry) = (
        rng.gen_range(60.0..95.0) * scale,
        rng.gen_range(35.0..60.0) * scale,
    );

    // Body: a closed cloud of outward bumps between points of an ellipse.
    let bumps = rng.gen_range(7..14);
    let start = rng.gen_range(0.0..2.0 * PI);
    let mut body = Vec::new();
    for k in 0..bumps {
        let a0 = start + 2.0 * PI * k as f64 / bumps as f64;
        let a1 = start + 2.0 * PI * (k + 1) as f64 / bumps as f64;
        let (p, q) = (
            (rx * a0.cos(), ry * a0.sin()),
            (rx * a1.cos(), ry * a1.sin()),
        );
        let (mx, my) = ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
        let half = (q.0 - p.0).hypot(q.1 - p.1) / 2.0;
        let puff = rng.gen_range(0.6..1.1);
        // The bump: half a circle over the chord p-q, bulging away from the centre.
        let chord = (q.1 - p.1).atan2(q.0 - p.0);
        for (x, y) in arc(0.0, 0.0, half, half * puff, PI, 2.0 * PI) {
            let (c, s) = (chord.cos(), chord.sin());
            body.push((mx + x * c - y * s, my + x * s + y * c));
        }
    }
    if rng.gen_bool(0.8) {
        pen.stroke(&body);
    } else {
        // Some players lift the pen once while going round.
        let cut = body.len() / rng.gen_range(2..4);
        pen.stroke(&body[..=cut]);
        pen.stroke(&body[cut..]);
    }

    // Head: an oval at the front, a little above the middle.
    let (hrx, hry) = (
        rng.gen_range(18.0..32.0) * scale,
        rng.gen_range(14.0..26.0) * scale,
    );
    let (hx, hy) = (
        face * (rx + hrx * rng.gen_range(0.4..1.0)),
        -ry * rng.gen_range(0.2..0.8),
    );
    let h0 = rng.gen_range(0.0..2.0 * PI);
    pen.stroke(&arc(
        hx,
        hy,
        hrx,
        hry,
        h0,
        h0 + 2.0 * PI * rng.gen_range(0.9..1.05),
    ));
    // Ears: short strokes up and out from the top of the head.
    for side in [-1.0, 1.0] {
        if rng.gen_bool(0.85) {
            let base = (hx + side * hrx * 0.5, hy - hry * 0.8);
            let tip = (
                base.0 + side * rng.gen_range(4.0..14.0) * scale,
                base.1 - rng.gen_range(6.0..16.0) * scale,
            );
            pen.stroke(&line(base, tip));
        }
    }
    if rng.gen_bool(0.6) {
        let eye = (hx + face * hrx * 0.35, hy - hry * 0.15);
        pen.stroke(&[eye]);
    }

    // Legs: four strokes down from the belly, front pair and back pair.
    let leg_len = rng.gen_range(30.0..70.0) * scale;
    let spread = rng.gen_range(0.5..0.85);
    let pair = rng.gen_range(0.15..0.4);
    for &u in &[-1.0, -1.0 + pair, 1.0 - pair, 1.0] {
        let x = u * rx * spread + rng.gen_range(-6.0..6.0);
        let top = (x, ry * (1.0 - (x / rx).powi(2)).max(0.0).sqrt() * 0.95);
        let lean = rng.gen_range(-0.25..0.25);
        pen.stroke(&line(top, (top.0 + leg_len * lean, top.1 + leg_len)));
    }

    // Tail: a small curl at the back, sometimes.
    if rng.gen_bool(0.4) {
        let (tx, ty) = (-face * rx * 1.02, -ry * 0.2);
        pen.stroke(&arc(
            tx - face * 6.0,
            ty,
            6.0 * scale,
            6.0 * scale,
            0.0,
            1.5 * PI,
        ));
    }

    Drawing {
        meta: Meta {
            word: "sheep".into(),
            countrycode: SYNTH_COUNTRY.into(),
            timestamp: Timestamp::Text("synthetic".into()),
            recognized: true,
            key_id: mixed >> 1,
        },
        strokes: simplify(&pen.strokes),
    }
}

/// `n` synthetic sheep of the stream seeded by `seed`, generated in parallel, in index order.
///
/// ```
/// let flock = mouton_data::synth_flock(16, 3);
/// assert_eq!(flock.len(), 16);
/// assert_eq!(flock[5], mouton_data::synth_sheep(3, 5));
/// ```
pub fn synth_flock(n: usize, seed: u64) -> Vec<Drawing> {
    synth_range(0..n as u64, seed)
}

/// The flock of [`synth_flock`] in pieces of at most 8,192 sheep, each generated in parallel:
/// a large flock can be written or rasterized with flat memory.
///
/// ```
/// let pieces: Vec<_> = mouton_data::synth_pieces(10_000, 3).collect();
/// assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), [8192, 1808]);
/// assert_eq!(pieces[1][0], mouton_data::synth_sheep(3, 8192));
/// assert_eq!(mouton_data::synth_pieces(0, 3).count(), 0);
/// ```
pub fn synth_pieces(n: usize, seed: u64) -> impl Iterator<Item = Vec<Drawing>> {
    const PIECE: u64 = 8192;
    let n = n as u64;
    (0..n.div_ceil(PIECE)).map(move |k| synth_range(k * PIECE..((k + 1) * PIECE).min(n), seed))
}

/// The synthetic sheep at `indices` of the stream seeded by `seed`, in parallel, in order.
fn synth_range(indices: std::ops::Range<u64>, seed: u64) -> Vec<Drawing> {
    indices
        .into_par_iter()
        .map(|i| synth_sheep(seed, i))
        .collect()
}
