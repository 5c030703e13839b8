//! The convolution and element-wise kernels of `layers.cu` against the CPU layers, launched
//! as `src/layers/cuda.rs` launches them (the GEMMs, cuBLAS on a GPU, done here in Rust).

use dfdx::prelude::*;
use mouton_models::layers::{activation, conv2d, upsample_nearest, Nchw};
use mouton_models::ops::activation::Activation;
use mouton_models::ops::conv2d::{Conv2dGeometry, Padding};

use super::{max_rel_err, skip, Program};
use crate::common::values;

const TOL: f32 = 2e-5;

fn random(len: usize, seed: u64) -> Vec<f32> {
    values(len, seed).into_iter().map(|v| v as f32).collect()
}

/// One convolution on the CPU: y, and the gradients of sum(y r).
struct Reference {
    g: Conv2dGeometry,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    r: Vec<f32>,
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

fn reference(
    (n, c, h, w, o, k, s): (usize, usize, usize, usize, usize, usize, usize),
    pad: Padding,
    seed: u64,
) -> Reference {
    let cpu = Cpu::default();
    let g = Conv2dGeometry::new(n, c, h, w, o, (k, k), s, pad).unwrap();
    let (xv, wv, bv) = (
        random(n * c * h * w, seed),
        random(o * c * k * k, seed + 1),
        random(o, seed + 2),
    );
    let rv = random(n * o * g.oh * g.ow, seed + 3);
    let x: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
    let wt = cpu.tensor_from_vec(wv.clone(), (o, c, k, k));
    let b = cpu.tensor_from_vec(bv.clone(), (o,));
    let y = conv2d(x.leaky_trace(), &wt, Some(&b), s, pad).unwrap();
    let r = cpu.tensor_from_vec(rv.clone(), *y.shape());
    let yv = y.retaped::<NoneTape>().as_vec();
    let grads = (y * r).sum::<(), _>().backward();
    Reference {
        g,
        x: xv,
        w: wv,
        b: bv,
        r: rv,
        y: yv,
        dx: grads.get(&x).as_vec(),
        dw: grads.get(&wt).as_vec(),
        db: grads.get(&b).as_vec(),
    }
}

/// `Geo` of `layers.cu` as a launch argument.
fn geo(g: &Conv2dGeometry) -> String {
    [
        g.batch, g.in_ch, g.h, g.w, g.kh, g.kw, g.stride, g.pad_top, g.pad_left, g.oh, g.ow,
        g.out_ch,
    ]
    .map(|v| v.to_string())
    .join(",")
}

/// `a (m x k) b (k x n)`, each product summed in f64; `ta`: `a` is stored (k x m).
fn matmul(a: &[f32], ta: bool, b: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f64;
            for t in 0..k {
                let av = if ta { a[t * m + i] } else { a[i * k + t] };
                acc += av as f64 * b[t * n + j] as f64;
            }
            out[i * n + j] = acc as f32;
        }
    }
    out
}

fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

fn check(what: &str, got: &[f32], want: &[f32]) {
    let e = max_rel_err(got, want);
    println!("{what}: relative error {e:.2e}");
    assert!(e <= TOL, "{what}: relative error {e:.2e} > {TOL:.0e}");
}

pub fn minus_half(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(|v| v - 0.5).collect()
}

fn grid(total: usize) -> usize {
    total.div_ceil(256).clamp(1, 65_535)
}

#[test]
fn im2col_and_col2im_around_gemms_give_the_cpu_convolution() {
    if skip() {
        return;
    }
    let explicit = Padding::Explicit {
        top: 1,
        bottom: 0,
        left: 2,
        right: 1,
    };
    let cases = [
        ((2, 3, 9, 9, 4, 3, 1), Padding::Same),
        ((2, 4, 14, 14, 5, 4, 2), Padding::Same),
        ((3, 2, 9, 11, 3, 3, 2), Padding::Valid),
        ((2, 3, 8, 6, 2, 2, 1), explicit),
        // 16 x 16 outputs: bias_grad_add's row-by-row branch (p >= 128).
        ((2, 2, 16, 16, 3, 3, 1), Padding::Same),
    ];
    for (i, (dims, pad)) in cases.into_iter().enumerate() {
        let r = reference(dims, pad, 10 * i as u64);
        let g = &r.g;
        let (n, o) = (g.batch, g.out_ch);
        let (kk, p) = (g.in_ch * g.kh * g.kw, g.oh * g.ow);
        let mut prog = Program::new(&["layers.cu"]);
        prog.buffer("x", &r.x)
            .buffer("cols", &vec![f32::NAN; n * kk * p])
            .buffer("db", &vec![0.5f32; o])
            .buffer("dy", &r.r);
        let cols = prog
            .launch(
                "im2col",
                [grid(kk * p).min(3), n, 1],
                [256, 1, 1],
                0,
                &format!("cols x {}", geo(g)),
            )
            .launch(
                "bias_grad_add",
                [o, 1, 1],
                [256, 1, 1],
                0,
                &format!("db dy {n} {o} {p}"),
            )
            .run();
        let (cols, db) = (cols.get::<f32>("cols"), cols.get::<f32>("db"));
        let what = format!("case {i} {dims:?} {pad:?}");
        // y_i = W cols_i + b
        let mut y = Vec::new();
        for img in 0..n {
            let yi = matmul(&r.w, false, &cols[img * kk * p..][..kk * p], (o, kk, p));
            y.extend(yi.iter().enumerate().map(|(j, v)| v + r.b[j / p]));
        }
        check(&format!("{what}: im2col forward"), &y, &r.y);
        check(&format!("{what}: bias_grad_add"), &minus_half(db), &r.db);
        // dW = sum_i dY_i cols_i^T; dcols_i = W^T dY_i, gathered by col2im_add.
        let mut dw = vec![0f32; o * kk];
        let mut dcols = Vec::new();
        for img in 0..n {
            let dyi = &r.r[img * o * p..][..o * p];
            let colsi_t = transpose(&cols[img * kk * p..][..kk * p], kk, p);
            for (a, v) in dw.iter_mut().zip(matmul(dyi, false, &colsi_t, (o, p, kk))) {
                *a += v;
            }
            dcols.extend(matmul(&r.w, true, dyi, (kk, o, p)));
        }
        check(
            &format!("{what}: weight gradient from the columns"),
            &dw,
            &r.dw,
        );
        let mut prog = Program::new(&["layers.cu"]);
        prog.buffer("dx", &vec![0.5f32; r.x.len()])
            .buffer("dcols", &dcols);
        let gx = grid(g.in_ch * g.h * g.w).min(2);
        let dx = prog
            .launch(
                "col2im_add",
                [gx, n, 1],
                [256, 1, 1],
                0,
                &format!("dx dcols {}", geo(g)),
            )
            .run()
            .get::<f32>("dx");
        check(&format!("{what}: col2im_add"), &minus_half(dx), &r.dx);
    }
}

#[test]
fn direct_kernels_give_the_cpu_convolution() {
    if skip() {
        return;
    }
    // (dims, weights in shared memory, image chunks of the weight gradient)
    let cases = [
        (((2, 3, 9, 9, 2, 3, 1), Padding::Same), true, 1),
        (((3, 5, 9, 11, 1, 3, 2), Padding::Valid), false, 1),
        (((5, 2, 7, 70, 3, 4, 2), Padding::Same), true, 3),
        (((4, 9, 6, 6, 1, 5, 1), Padding::Same), false, 2),
    ];
    for (i, ((dims, pad), wsm, chunks)) in cases.into_iter().enumerate() {
        let r = reference(dims, pad, 100 + 10 * i as u64);
        let g = &r.g;
        let (n, c, o) = (g.batch, g.in_ch, g.out_ch);
        let kk = c * g.kh * g.kw;
        let taps = g.kh * g.kw;
        let per = n.div_ceil(chunks);
        assert_eq!(n.div_ceil(per), chunks);
        let len = o * c * taps;
        let mut prog = Program::new(&["layers.cu"]);
        prog.buffer("x", &r.x)
            .buffer("w", &r.w)
            .buffer("b", &r.b)
            .buffer("y", &vec![f32::NAN; r.y.len()])
            .buffer("dy", &r.r)
            .buffer("dx", &vec![0.5f32; r.x.len()])
            .buffer("dw", &vec![0.5f32; len])
            .buffer("parts", &vec![f32::NAN; chunks * len]);
        let gs = geo(g);
        let smem = if wsm { 4 * kk } else { 0 };
        let args = format!("y x w b 1 {} {gs}", i32::from(wsm));
        prog.launch(
            "conv_direct",
            [g.oh.div_ceil(2), o, n],
            [32, 8, 1],
            smem,
            &args,
        )
        .launch(
            "conv_direct_dx_add",
            [2, n, 1],
            [256, 1, 1],
            0,
            &format!("dx dy w {gs}"),
        );
        let dw_bytes = taps * 256 * 4;
        if chunks == 1 {
            let args = format!("dw dy x {gs} {per}");
            prog.launch(
                "conv_direct_dw_add",
                [o * c, 1, 1],
                [256, 1, 1],
                dw_bytes,
                &args,
            );
        } else {
            let args = format!("parts dy x {gs} {per}");
            prog.launch(
                "conv_direct_dw_add",
                [o * c, chunks, 1],
                [256, 1, 1],
                dw_bytes,
                &args,
            )
            .launch(
                "sum_batches_add",
                [2, 1, 1],
                [256, 1, 1],
                0,
                &format!("dw parts {chunks} {len}"),
            );
        }
        let out = prog.run();
        let what = format!("case {i} {dims:?} {pad:?}");
        check(&format!("{what}: conv_direct"), &out.get::<f32>("y"), &r.y);
        // The gradients are added to what the buffers held.
        let dx = minus_half(out.get("dx"));
        check(&format!("{what}: conv_direct_dx_add"), &dx, &r.dx);
        let dw = minus_half(out.get("dw"));
        check(&format!("{what}: conv_direct_dw_add"), &dw, &r.dw);
    }
}

#[test]
fn element_wise_kernels_match_the_cpu_layers() {
    if skip() {
        return;
    }
    let cpu = Cpu::default();
    let (n, c, h, w, f) = (2, 3, 5, 4, 2);
    let xv = random(n * c * h * w, 7);
    let len = xv.len();
    let acts = [
        (Activation::Identity, 0, 0.0),
        (Activation::Relu, 1, 0.0),
        (Activation::LeakyRelu(0.2), 2, 0.2f32),
        (Activation::Sigmoid, 3, 0.0),
        (Activation::Tanh, 4, 0.0),
    ];
    let gy = random(len, 8);
    for (act, kind, slope) in acts {
        let x: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let y = activation(x.leaky_trace(), act);
        let yv = y.retaped::<NoneTape>().as_vec();
        let r = cpu.tensor_from_vec(gy.clone(), (n, c, h, w));
        let dx = (y * r).sum::<(), _>().backward().get(&x).as_vec();
        let mut prog = Program::new(&["layers.cu"]);
        prog.buffer("y", &xv)
            .buffer("gy", &gy)
            .buffer("g", &vec![f32::NAN; len]);
        // bias_act without a bias applies the activation in place; act_grad reads its output.
        let out = prog
            .launch(
                "bias_act",
                [1, 1, 1],
                [256, 1, 1],
                0,
                &format!("y y 0 {c} {} {len} {kind} {slope:?}", h * w),
            )
            .launch(
                "act_grad",
                [1, 1, 1],
                [256, 1, 1],
                0,
                &format!("g gy y {len} {kind} {slope:?}"),
            )
            .run();
        check(&format!("{act:?} forward"), &out.get::<f32>("y"), &yv);
        check(&format!("{act:?} backward"), &out.get::<f32>("g"), &dx);
    }
    let x: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
    let y = upsample_nearest(x.leaky_trace(), f);
    let yv = y.retaped::<NoneTape>().as_vec();
    let r = cpu.tensor_from_vec(random(yv.len(), 9), *y.shape());
    let rv = r.as_vec();
    let dx = (y * r).sum::<(), _>().backward().get(&x).as_vec();
    let mut prog = Program::new(&["layers.cu"]);
    prog.buffer("x", &xv)
        .buffer("y", &vec![f32::NAN; yv.len()])
        .buffer("dy", &rv)
        .buffer("dx", &vec![0.5f32; len]);
    let out = prog
        .launch(
            "upsample_fwd",
            [2, 1, 1],
            [256, 1, 1],
            0,
            &format!("y x {h} {w} {f} {}", yv.len()),
        )
        .launch(
            "upsample_bwd_add",
            [1, 1, 1],
            [64, 1, 1],
            0,
            &format!("dx dy {h} {w} {f} {len}"),
        )
        .run();
    check("upsample forward", &out.get::<f32>("y"), &yv);
    check("upsample backward", &minus_half(out.get("dx")), &dx);
}
