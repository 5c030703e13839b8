//! Single-thread render time per drawing over the 8,600 shared simplified drawings.
use std::time::Instant;

use mouton_data::{NdjsonReader, RasterOptions, Rasterizer};

fn main() {
    let dir = std::path::Path::new("../shared/quickdraw/simplified_ndjson_first25");
    let mut drawings = Vec::new();
    for e in std::fs::read_dir(dir).expect("shared data") {
        let r = NdjsonReader::open(&e.unwrap().path()).unwrap();
        drawings.extend(r.map(|d| d.unwrap().0.strokes));
    }
    let mut r = Rasterizer::new(RasterOptions::default()).unwrap();
    let mut img = vec![0u8; 784];
    let mut best = f64::MAX;
    let mut check = 0u64;
    for _ in 0..7 {
        let t = Instant::now();
        for d in &drawings {
            r.render(d, &mut img);
            check += img[400] as u64;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} drawings: {:.3} us per drawing (check {check})",
        drawings.len(),
        best * 1e6 / drawings.len() as f64
    );
}
