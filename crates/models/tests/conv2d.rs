//! conv2d against the direct formula, and its gradients against finite differences (f64).

use crate::common::values;

use mouton_models::ops::activation::Activation;
use mouton_models::ops::conv2d::{
    conv2d_backward, conv2d_backward_weights_kept, conv2d_forward, conv2d_forward_keep,
    Conv2dGeometry, Padding,
};
use proptest::prelude::*;

/// out[n, o, oy, ox] = b[o] + sum_{c, ky, kx} w[o, c, ky, kx] x[n, c, oy s + ky - pt, ox s + kx - pl]
fn direct(g: &Conv2dGeometry, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.sizes().2];
    for n in 0..g.batch {
        for o in 0..g.out_ch {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = b[o];
                    for c in 0..g.in_ch {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let y = (oy * g.stride + ky) as isize - g.pad_top as isize;
                                let xx = (ox * g.stride + kx) as isize - g.pad_left as isize;
                                if y >= 0 && xx >= 0 && (y as usize) < g.h && (xx as usize) < g.w {
                                    acc += w[((o * g.in_ch + c) * g.kh + ky) * g.kw + kx]
                                        * x[((n * g.in_ch + c) * g.h + y as usize) * g.w
                                            + xx as usize];
                                }
                            }
                        }
                    }
                    out[((n * g.out_ch + o) * g.oh + oy) * g.ow + ox] = acc;
                }
            }
        }
    }
    out
}

fn geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        1usize..4,
        1usize..4,
        1usize..9,
        1usize..9,
        1usize..4,
        (1usize..5, 1usize..5),
        1usize..4,
        prop_oneof![
            Just(Padding::Valid),
            Just(Padding::Same),
            (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(top, bottom, left, right)| {
                Padding::Explicit {
                    top,
                    bottom,
                    left,
                    right,
                }
            }),
        ],
    )
        .prop_filter_map("kernel fits", |(n, c, h, w, o, k, s, p)| {
            Conv2dGeometry::new(n, c, h, w, o, k, s, p).ok()
        })
}

/// Stride-1 geometries with at least as many input channels as output taps (O KH KW), which
/// take the per-tap GEMM path instead of im2col.
fn tap_geometry() -> impl Strategy<Value = Conv2dGeometry> {
    (
        1usize..3,
        1usize..3,
        (1usize..4, 1usize..3),
        0usize..3,
        1usize..7,
        1usize..7,
        prop_oneof![
            Just(Padding::Valid),
            Just(Padding::Same),
            (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(top, bottom, left, right)| {
                Padding::Explicit {
                    top,
                    bottom,
                    left,
                    right,
                }
            }),
        ],
    )
        .prop_filter_map("kernel fits", |(n, o, k, extra, h, w, p)| {
            Conv2dGeometry::new(n, o * k.0 * k.1 + extra, h, w, o, k, 1, p).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn forward_matches_the_direct_formula(g in prop_oneof![geometry(), tap_geometry()], seed in any::<u64>()) {
        let (nx, nw, no) = g.sizes();
        let (x, w, b) = (values(nx, seed), values(nw, seed ^ 1), values(g.out_ch, seed ^ 2));
        let mut out = vec![0.0; no];
        conv2d_forward(&g, &x, &w, Some(&b), &mut out);
        let want = direct(&g, &x, &w, &b);
        for (a, e) in out.iter().zip(&want) {
            prop_assert!((a - e).abs() <= 1e-12 * (1.0 + e.abs()), "{} vs {}", a, e);
        }
        // f32 agrees with f64 to f32 precision.
        let (x32, w32, b32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            w.iter().map(|&v| v as f32).collect(),
            b.iter().map(|&v| v as f32).collect(),
        );
        let mut out32 = vec![0.0f32; no];
        conv2d_forward(&g, &x32, &w32, Some(&b32), &mut out32);
        for (a, e) in out32.iter().zip(&want) {
            prop_assert!((*a as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()));
        }
    }

    #[test]
    fn gradients_match_finite_differences(g in prop_oneof![geometry(), tap_geometry()], seed in any::<u64>()) {
        let (nx, nw, no) = g.sizes();
        let (x, w, b) = (values(nx, seed), values(nw, seed ^ 1), values(g.out_ch, seed ^ 2));
        // L = sum r * out for a fixed random r, so dL/dout = r.
        let r = values(no, seed ^ 3);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            direct(&g, x, w, b).iter().zip(&r).map(|(o, r)| o * r).sum()
        };
        let (mut gx, mut gw, mut gb) = (vec![0.0; nx], vec![0.0; nw], vec![0.0; g.out_ch]);
        conv2d_backward(&g, &x, &w, &r, Some(&mut gx), Some(&mut gw), Some(&mut gb));
        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        for i in 0..nx {
            let d = fd(&|e| { let mut xx = x.clone(); xx[i] += e; loss(&xx, &w, &b) });
            prop_assert!((gx[i] - d).abs() <= 1e-6 * (1.0 + d.abs()), "dx[{}]: {} vs {}", i, gx[i], d);
        }
        for i in 0..nw {
            let d = fd(&|e| { let mut ww = w.clone(); ww[i] += e; loss(&x, &ww, &b) });
            prop_assert!((gw[i] - d).abs() <= 1e-6 * (1.0 + d.abs()), "dw[{}]: {} vs {}", i, gw[i], d);
        }
        for i in 0..g.out_ch {
            let d = fd(&|e| { let mut bb = b.clone(); bb[i] += e; loss(&x, &w, &bb) });
            prop_assert!((gb[i] - d).abs() <= 1e-6 * (1.0 + d.abs()), "db[{}]: {} vs {}", i, gb[i], d);
        }
        // Gradients accumulate: a second call doubles them.
        let gx1 = gx.clone();
        conv2d_backward(&g, &x, &w, &r, Some(&mut gx), None, None);
        for (a, b) in gx.iter().zip(&gx1) {
            prop_assert!((a - 2.0 * b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `pads_symmetrically` (which sends a convolution to cuDNN) says yes exactly when the
    /// same convolution with `pad_top`/`pad_left` zeros on both sides gives the same output.
    #[test]
    fn symmetric_padding_is_claimed_exactly_when_it_computes_the_same(
        g in geometry(),
        seed in any::<u64>(),
    ) {
        let sym = Padding::Explicit {
            top: g.pad_top,
            bottom: g.pad_top,
            left: g.pad_left,
            right: g.pad_left,
        };
        let s = Conv2dGeometry::new(g.batch, g.in_ch, g.h, g.w, g.out_ch, (g.kh, g.kw), g.stride, sym);
        let same_size = s.as_ref().is_ok_and(|s| (s.oh, s.ow) == (g.oh, g.ow));
        prop_assert_eq!(g.pads_symmetrically(), same_size);
        if let (Ok(s), true) = (s, same_size) {
            let (nx, nw, _) = g.sizes();
            let (x, w) = (values(nx, seed), values(nw, seed ^ 1));
            prop_assert_eq!(direct(&g, &x, &w, &vec![0.0; g.out_ch]), direct(&s, &x, &w, &vec![0.0; g.out_ch]));
        }
    }
}

#[test]
fn keras_same_padding_is_asymmetric_for_even_kernels() {
    // 7x7 -> 4x4 with k 4, s 2: pad_total = (4 - 1) * 2 + 4 - 7 = 3: 1 above, 2 below.
    let g = Conv2dGeometry::new(1, 1, 7, 7, 1, (4, 4), 2, Padding::Same).unwrap();
    assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (4, 4, 1, 1));
    // The SHEEP1 discriminator's three stride-2 "same" convolutions: 28 -> 14 -> 7 -> 4.
    let sizes: Vec<usize> = [28, 14, 7]
        .iter()
        .map(|&s| {
            Conv2dGeometry::new(1, 1, s, s, 1, (4, 4), 2, Padding::Same)
                .unwrap()
                .oh
        })
        .collect();
    assert_eq!(sizes, [14, 7, 4]);
    assert!(Conv2dGeometry::new(1, 1, 2, 2, 1, (3, 3), 1, Padding::Valid).is_err());
    assert!(Conv2dGeometry::new(1, 0, 2, 2, 1, (1, 1), 1, Padding::Valid).is_err());
}

#[test]
fn result_does_not_depend_on_the_thread_count() {
    // im2col, then per-tap GEMMs (2 x 3 x 3 = 18 taps <= 20 input channels).
    for g in [
        Conv2dGeometry::new(13, 3, 9, 9, 4, (3, 3), 1, Padding::Same).unwrap(),
        Conv2dGeometry::new(13, 20, 9, 9, 2, (3, 3), 1, Padding::Same).unwrap(),
    ] {
        thread_count_independent(g);
    }
}

#[test]
fn kept_column_weight_gradient_does_not_depend_on_the_thread_count() {
    // Patch 40 x 4 x 4 = 640 rows of dW^T: two fixed blocks; 5 x 5 outputs: groups of 11 images.
    let g = Conv2dGeometry::new(25, 40, 10, 10, 6, (4, 4), 2, Padding::Same).unwrap();
    let (x, w, r) = inputs(&g, 8);
    let (nw, no) = (w.len(), r.len());
    let kept_gradient = || {
        let mut out = vec![0.0f32; no];
        let kept =
            conv2d_forward_keep(&g, &x, &w, None, Activation::Identity, &mut out).expect("small");
        let mut gw = vec![0.5f32; nw];
        conv2d_backward_weights_kept(&kept, &r, &mut gw);
        gw
    };
    let one = on_threads(1, kept_gradient);
    assert_eq!(
        one,
        on_threads(3, kept_gradient),
        "bit-identical across thread counts"
    );
    // The same gradient as rebuilding the columns, up to the order of the sums.
    let mut rebuilt = vec![0.5f32; nw];
    conv2d_backward(&g, &x, &w, &r, None, Some(&mut rebuilt), None);
    for (a, b) in one.iter().zip(&rebuilt) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}

/// Input, weights and output gradient of `g` in f32, from seeds `seed..seed + 3`.
fn inputs(g: &Conv2dGeometry, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (nx, nw, no) = g.sizes();
    let f32s = |n, s| values(n, s).iter().map(|&v| v as f32).collect::<Vec<f32>>();
    (f32s(nx, seed), f32s(nw, seed + 1), f32s(no, seed + 2))
}

/// `f` run on a rayon pool of `threads` threads.
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn thread_count_independent(g: Conv2dGeometry) {
    let (x, w, r) = inputs(&g, 5);
    let gradient = || {
        let mut gw = vec![0.0f32; w.len()];
        conv2d_backward(&g, &x, &w, &r, None, Some(&mut gw), None);
        gw
    };
    assert_eq!(
        on_threads(1, gradient),
        on_threads(3, gradient),
        "bit-identical across thread counts"
    );
}
