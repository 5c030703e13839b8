//! Our nearest upsampling against dfdx's `upscale2d_like(NearestNeighbor)`, values and gradients.

use dfdx::prelude::*;
use mouton_models::layers::upsample_nearest;

#[test]
fn matches_dfdx_upscale2d() {
    let dev = Cpu::default();
    let (n, c, h, w) = (2usize, 3usize, 7usize, 5usize);
    let v: Vec<f32> = (0..n * c * h * w)
        .map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0)
        .collect();
    let weights: Vec<f32> = (0..n * c * h * w * 4)
        .map(|i| ((i * 13) % 17) as f32 / 4.0)
        .collect();
    let r = dev.tensor_from_vec(weights, (n, c, 2 * h, 2 * w));

    let x = dev.tensor_from_vec(v.clone(), (n, c, h, w));
    let ours = upsample_nearest(x.clone().trace(Gradients::leaky()), 2);
    let ours_v = ours.as_vec();
    let g_ours = (ours * r.clone())
        .sum::<(), _>()
        .backward()
        .get(&x)
        .as_vec();

    let theirs = x
        .clone()
        .trace(Gradients::leaky())
        .upscale2d_like(NearestNeighbor, 2 * h, 2 * w);
    let theirs_v = theirs.as_vec();
    let g_theirs = (theirs * r).sum::<(), _>().backward().get(&x).as_vec();

    assert_eq!(ours_v, theirs_v);
    for (a, b) in g_ours.iter().zip(&g_theirs) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
