//! Per-drawing render time of the two backends on the same real drawings (the 25 shared sheep,
//! from ../shared/quickdraw; skipped with a message when absent).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use mouton_data::{NdjsonReader, RasterOptions, Rasterizer, SkiaRasterizer, Strokes};

fn sheep() -> Option<Vec<Strokes>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/quickdraw/simplified_ndjson_first25/sheep.ndjson");
    let r = NdjsonReader::open(&p).ok()?;
    Some(r.map(|d| d.expect("valid sample").0.strokes).collect())
}

/// The first 25 simplified drawings of every shared category (8,600 drawings, 344 categories):
/// what the whole-file benchmark renders, repeated.
fn all_categories() -> Option<Vec<Strokes>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/quickdraw/simplified_ndjson_first25");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for d in NdjsonReader::open(&f).ok()? {
            out.push(d.expect("valid sample").0.strokes);
        }
    }
    Some(out)
}

fn benches(c: &mut Criterion) {
    let Some(drawings) = sheep() else {
        eprintln!("SKIPPED: ../shared/quickdraw is absent");
        return;
    };
    let opts = RasterOptions::default();
    let mut img = vec![0u8; 784];
    let mut g = c.benchmark_group("render 25 real sheep at 28x28");
    let mut ours = Rasterizer::new(opts).expect("valid options");
    g.bench_function("mouton Rasterizer (cairo model)", |b| {
        b.iter(|| {
            for d in &drawings {
                ours.render(d, &mut img);
            }
        })
    });
    let mut skia = SkiaRasterizer::new(opts).expect("valid options");
    g.bench_function("tiny-skia", |b| {
        b.iter(|| {
            for d in &drawings {
                skia.render(d, &mut img);
            }
        })
    });
    g.finish();
    if let Some(all) = all_categories() {
        let mut g =
            c.benchmark_group("render the 8,600 shared drawings of 344 categories at 28x28");
        g.sample_size(10);
        g.bench_function("mouton Rasterizer (cairo model)", |b| {
            b.iter(|| {
                for d in &all {
                    ours.render(d, &mut img);
                }
            })
        });
        g.finish();
    }
}

criterion_group!(raster, benches);
criterion_main!(raster);
