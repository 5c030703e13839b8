//! Golden test: our rendering of Google's simplified drawings against Google's own numpy_bitmap
//! rows (275 pairs: 25 drawings x 11 categories from `../shared/quickdraw`).

use crate::common;

use mouton_data::{NdjsonReader, RasterOptions, Rasterizer, SkiaRasterizer, Strokes};

const CATEGORIES: [&str; 11] = [
    "sheep", "bear", "cat", "dog", "duck", "fish", "frog", "lion", "monkey", "rabbit", "train",
];

fn bitmap_file(cat: &str) -> String {
    // The train bitmaps are stored as trains1000.bin (the first 1000 rows of the train file).
    if cat == "train" {
        "trains1000.bin".into()
    } else {
        format!("{cat}.bin")
    }
}

/// Accuracy figures of one renderer over the 275 golden pairs.
struct Figures {
    mae: f64,
    within16: f64,
    identical: u64,
    worst: (u64, String),
}

fn measure(dir: &std::path::Path, mut render: impl FnMut(&Strokes, &mut [u8])) -> Figures {
    let mut img = vec![0u8; 784];
    let (mut abs_sum, mut within, mut pixels, mut identical) = (0u64, 0u64, 0u64, 0u64);
    let mut worst = (0u64, String::new());
    for cat in CATEGORIES {
        let bitmaps = std::fs::read(dir.join("bitmap28_uint8").join(bitmap_file(cat))).unwrap();
        let path = dir
            .join("simplified_ndjson_first25")
            .join(format!("{cat}.ndjson"));
        let mut n = 0;
        for (row, item) in NdjsonReader::open(&path).unwrap().enumerate() {
            let (d, _) = item.unwrap();
            render(&d.strokes, &mut img);
            let want = &bitmaps[row * 784..(row + 1) * 784];
            let mut img_abs = 0u64;
            for (&a, &b) in img.iter().zip(want) {
                let diff = (a as i32 - b as i32).unsigned_abs() as u64;
                img_abs += diff;
                within += (diff <= 16) as u64;
            }
            abs_sum += img_abs;
            pixels += 784;
            identical += (img_abs == 0) as u64;
            if img_abs > worst.0 {
                worst = (img_abs, format!("{cat} row {row}"));
            }
            n += 1;
        }
        assert_eq!(n, 25, "{cat}");
    }
    assert_eq!(pixels, 275 * 784);
    Figures {
        mae: abs_sum as f64 / pixels as f64,
        within16: within as f64 / pixels as f64,
        identical,
        worst,
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name} vs Google, 275 images: mean abs error {:.4} grey levels, {:.3} % of pixels within +-16, {} images identical, worst {} (sum |diff| {})",
        f.mae,
        100.0 * f.within16,
        f.identical,
        f.worst.1,
        f.worst.0
    );
}

#[test]
fn rasterizer_matches_googles_bitmaps() {
    let Some(dir) = common::quickdraw("bitmap28_uint8") else {
        return;
    };
    let mut ours = Rasterizer::new(RasterOptions::default()).unwrap();
    let f = measure(&dir, |s, out| ours.render(s, out));
    report("mouton Rasterizer (cairo model)", &f);
    assert!(f.mae <= 1.0, "mean absolute error {} > 1.0", f.mae);
    assert!(
        f.within16 >= 0.99,
        "only {} of pixels within +-16",
        f.within16
    );

    // The tiny-skia backend, measured for comparison: reported, held to what it reaches.
    let mut skia = SkiaRasterizer::new(RasterOptions::default()).unwrap();
    let g = measure(&dir, |s, out| skia.render(s, out));
    report("tiny-skia backend", &g);
    assert!(g.mae < 3.0 && g.mae > f.mae, "tiny-skia: {}", g.mae);
}
