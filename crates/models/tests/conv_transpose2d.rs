//! conv_transpose2d against the direct scatter formula, and its gradients against finite
//! differences (f64).

use crate::common::values;

use mouton_models::ops::conv_transpose2d::{
    conv_transpose2d_backward, conv_transpose2d_forward, ConvTranspose2dGeometry,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Dims {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    s: usize,
    p: usize,
}

/// out[n, co, iy s + ky - p, ix s + kx - p] += x[n, ci, iy, ix] w[ci, co, ky, kx], plus b[co].
fn direct(d: &Dims, g: &ConvTranspose2dGeometry, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (oh, ow) = g.out_hw();
    let mut out = vec![0.0; d.n * d.co * oh * ow];
    for n in 0..d.n {
        for co in 0..d.co {
            for v in &mut out[(n * d.co + co) * oh * ow..(n * d.co + co + 1) * oh * ow] {
                *v = b[co];
            }
        }
        for ci in 0..d.ci {
            for iy in 0..d.h {
                for ix in 0..d.w {
                    let xv = x[((n * d.ci + ci) * d.h + iy) * d.w + ix];
                    for co in 0..d.co {
                        for ky in 0..d.kh {
                            for kx in 0..d.kw {
                                let y = (iy * d.s + ky) as isize - d.p as isize;
                                let xx = (ix * d.s + kx) as isize - d.p as isize;
                                if y >= 0 && xx >= 0 && (y as usize) < oh && (xx as usize) < ow {
                                    out[((n * d.co + co) * oh + y as usize) * ow + xx as usize] +=
                                        xv * w[((ci * d.co + co) * d.kh + ky) * d.kw + kx];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn case() -> impl Strategy<Value = (Dims, ConvTranspose2dGeometry)> {
    (
        1usize..3,
        1usize..4,
        1usize..6,
        1usize..6,
        1usize..4,
        1usize..5,
        1usize..5,
        1usize..4,
        0usize..3,
        0usize..3,
    )
        .prop_filter_map("valid geometry", |(n, ci, h, w, co, kh, kw, s, p, op)| {
            let g = ConvTranspose2dGeometry::new(n, ci, h, w, co, (kh, kw), s, p, op % s).ok()?;
            Some((
                Dims {
                    n,
                    ci,
                    h,
                    w,
                    co,
                    kh,
                    kw,
                    s,
                    p,
                },
                g,
            ))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn forward_and_gradients((d, g) in case(), seed in any::<u64>()) {
        let (nx, nw, no) = g.sizes();
        let (x, w, b) = (values(nx, seed), values(nw, seed ^ 1), values(d.co, seed ^ 2));
        let mut out = vec![0.0; no];
        conv_transpose2d_forward(&g, &x, &w, Some(&b), &mut out);
        let want = direct(&d, &g, &x, &w, &b);
        for (a, e) in out.iter().zip(&want) {
            prop_assert!((a - e).abs() <= 1e-12 * (1.0 + e.abs()), "{} vs {}", a, e);
        }
        let r = values(no, seed ^ 3);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            direct(&d, &g, x, w, b).iter().zip(&r).map(|(o, r)| o * r).sum()
        };
        let (mut gx, mut gw, mut gb) = (vec![0.0; nx], vec![0.0; nw], vec![0.0; d.co]);
        conv_transpose2d_backward(&g, &x, &w, &r, Some(&mut gx), Some(&mut gw), Some(&mut gb));
        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        for i in 0..nx {
            let e = fd(&|t| { let mut v = x.clone(); v[i] += t; loss(&v, &w, &b) });
            prop_assert!((gx[i] - e).abs() <= 1e-6 * (1.0 + e.abs()), "dx[{}]: {} vs {}", i, gx[i], e);
        }
        for i in 0..nw {
            let e = fd(&|t| { let mut v = w.clone(); v[i] += t; loss(&x, &v, &b) });
            prop_assert!((gw[i] - e).abs() <= 1e-6 * (1.0 + e.abs()), "dw[{}]: {} vs {}", i, gw[i], e);
        }
        for i in 0..d.co {
            let e = fd(&|t| { let mut v = b.clone(); v[i] += t; loss(&x, &w, &v) });
            prop_assert!((gb[i] - e).abs() <= 1e-6 * (1.0 + e.abs()), "db[{}]: {} vs {}", i, gb[i], e);
        }
    }
}

#[test]
fn pytorch_output_sizes() {
    // (H - 1) s - 2 p + k + output_padding, as torch.nn.ConvTranspose2d documents.
    for (h, k, s, p, op, want) in [
        (7, 4, 2, 1, 0, 14),
        (1, 7, 1, 0, 0, 7),
        (4, 3, 2, 1, 1, 8),
        (14, 4, 2, 1, 0, 28),
    ] {
        let g = ConvTranspose2dGeometry::new(1, 1, h, h, 1, (k, k), s, p, op).unwrap();
        assert_eq!(g.out_hw(), (want, want), "h {h} k {k} s {s} p {p} op {op}");
    }
    assert!(ConvTranspose2dGeometry::new(1, 1, 2, 2, 1, (2, 2), 2, 0, 2).is_err());
    assert!(ConvTranspose2dGeometry::new(1, 1, 1, 1, 1, (1, 1), 1, 3, 0).is_err());
}
