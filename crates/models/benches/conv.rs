//! Forward + backward of the SHEEP1 discriminator's three convolutions (4x4, stride 2, "same")
//! and the generator's three (3x3 and 5x5, "same"), batch 64, f32, CPU.

use criterion::{criterion_group, criterion_main, Criterion};
use mouton_models::ops::conv2d::{conv2d_backward, conv2d_forward, Conv2dGeometry, Padding};

fn benches(c: &mut Criterion) {
    let layers = [
        ("sheep1-d conv1 1->64 28x28", (1, 28, 64, 4, 2)),
        ("sheep1-d conv2 64->128 14x14", (64, 14, 128, 4, 2)),
        ("sheep1-d conv3 128->128 7x7", (128, 7, 128, 4, 2)),
        ("sheep1-g conv1 64->128 14x14", (64, 14, 128, 3, 1)),
        ("sheep1-g conv2 128->256 28x28", (128, 28, 256, 3, 1)),
        ("sheep1-g conv3 256->1 5x5 28x28", (256, 28, 1, 5, 1)),
    ];
    let mut group = c.benchmark_group("conv2d fwd+bwd, batch 64, f32");
    group.sample_size(10);
    for (name, (cin, hw, cout, k, s)) in layers {
        let g =
            Conv2dGeometry::new(64, cin, hw, hw, cout, (k, k), s, Padding::Same).expect("valid");
        let (nx, nw, no) = g.sizes();
        let x: Vec<f32> = (0..nx).map(|i| (i % 13) as f32 / 13.0).collect();
        let w: Vec<f32> = (0..nw).map(|i| (i % 7) as f32 / 70.0).collect();
        let b = vec![0.1f32; cout];
        let (mut y, mut gx, mut gw, mut gb) =
            (vec![0.0; no], vec![0.0; nx], vec![0.0; nw], vec![0.0; cout]);
        group.bench_function(name, |bch| {
            bch.iter(|| {
                conv2d_forward(&g, &x, &w, Some(&b), &mut y);
                conv2d_backward(&g, &x, &w, &y, Some(&mut gx), Some(&mut gw), Some(&mut gb));
            })
        });
    }
    group.finish();
}

criterion_group!(conv, benches);
criterion_main!(conv);
