//! Golden test: Google's simplification re-derived from the raw drawings, against Google's own
//! simplified files (the first 25 drawings of 12 categories line up by key_id).

use crate::common;

use mouton_data::{simplify, NdjsonKind, NdjsonReader};

const CATEGORIES: [&str; 12] = [
    "sheep", "bear", "cat", "dog", "duck", "fish", "frog", "lion", "monkey", "rabbit", "rainbow",
    "train",
];

#[test]
fn simplification_reproduces_googles_files() {
    let Some(dir) = common::quickdraw("raw_ndjson_head") else {
        return;
    };
    let (mut total, mut same, mut sheep_total, mut sheep_same) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for cat in CATEGORIES {
        let raw =
            NdjsonReader::open(&dir.join("raw_ndjson_head").join(format!("{cat}.ndjson"))).unwrap();
        let simp = NdjsonReader::open(
            &dir.join("simplified_ndjson_first25")
                .join(format!("{cat}.ndjson")),
        )
        .unwrap();
        for (r, s) in raw.zip(simp) {
            let ((r, rk), (s, sk)) = (r.unwrap(), s.unwrap());
            assert_eq!((rk, sk), (NdjsonKind::Raw, NdjsonKind::Simplified));
            assert_eq!(r.meta.key_id, s.meta.key_id, "{cat}: rows must line up");
            let ours = simplify(&r.strokes);
            let hit = ours.x == s.strokes.x && ours.y == s.strokes.y && ours.ends == s.strokes.ends;
            total += 1;
            same += hit as usize;
            if cat == "sheep" {
                sheep_total += 1;
                sheep_same += hit as usize;
            }
            if !hit {
                misses.push(format!("{cat}/{}", r.meta.key_id));
            }
        }
    }
    println!(
        "simplification identical to Google's: {same}/{total} drawings ({sheep_same}/{sheep_total} sheep); misses: {}",
        misses.join(", ")
    );
    assert_eq!((total, sheep_total), (256, 23));
    assert!(same >= 240, "only {same}/256 identical");
    assert_eq!(sheep_same, 23, "only {sheep_same}/23 sheep identical");
}
