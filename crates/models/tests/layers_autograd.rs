//! The dfdx op: gradients through a small graph (two chained convolutions and dfdx's own ops)
//! match finite differences of the whole graph, in f64; the fused convolution + activation
//! equals the two ops chained; the dense op equals dfdx's matmul and broadcast addition.

use crate::common::values;

use dfdx::prelude::*;
use mouton_models::layers::{
    activation, conv2d, conv2d_act, conv_transpose2d, conv_transpose2d_act, dense, no_bias,
};
use mouton_models::ops::activation::Activation;
use mouton_models::ops::conv2d::Padding;

type T4 = Tensor<(usize, usize, usize, usize), f64, Cpu>;

struct Net {
    w1: T4,
    b1: Tensor<(usize,), f64, Cpu>,
    w2: T4,
    r: Vec<f64>,
}

impl Net {
    /// L = sum r * conv(sigmoid-free tanh(conv(x, w1) + b1), w2, stride 2, "same")
    fn loss_value(&self, dev: &Cpu, x: &[f64]) -> f64 {
        let x = dev.tensor_from_vec(x.to_vec(), (2usize, 2usize, 5usize, 5usize));
        let h = conv2d(x, &self.w1, Some(&self.b1), 1, Padding::Same)
            .unwrap()
            .tanh();
        let y = conv2d(h, &self.w2, no_bias(), 2, Padding::Same).unwrap();
        let r = dev.tensor_from_vec(self.r.clone(), *y.shape());
        (y * r).sum::<(), _>().array()
    }
}

#[test]
fn gradients_through_a_graph_match_finite_differences() {
    let dev = Cpu::default();
    let xv = values(2 * 2 * 5 * 5, 1);
    let mut net = Net {
        w1: dev.tensor_from_vec(values(3 * 2 * 3 * 3, 2), (3usize, 2usize, 3usize, 3usize)),
        b1: dev.tensor_from_vec(values(3, 3), (3usize,)),
        w2: dev.tensor_from_vec(values(3 * 2 * 2, 4), (1usize, 3usize, 2usize, 2usize)),
        r: values(2 * 3 * 3, 5),
    };
    // Analytic gradients: one backward through the taped graph.
    let x = dev.tensor_from_vec(xv.clone(), (2usize, 2usize, 5usize, 5usize));
    let grads = Gradients::leaky();
    let h = conv2d(
        x.clone().trace(grads),
        &net.w1,
        Some(&net.b1),
        1,
        Padding::Same,
    )
    .unwrap()
    .tanh();
    let y = conv2d(h, &net.w2, no_bias(), 2, Padding::Same).unwrap();
    assert_eq!(*y.shape(), (2, 1, 3, 3));
    let r = dev.tensor_from_vec(net.r.clone(), *y.shape());
    let g = (y * r).sum::<(), _>().backward();
    let (gx, gw1, gb1, gw2) = (
        g.get(&x).as_vec(),
        g.get(&net.w1).as_vec(),
        g.get(&net.b1).as_vec(),
        g.get(&net.w2).as_vec(),
    );

    let eps = 1e-6;
    let check = |name: &str, analytic: &[f64], numeric: Vec<f64>| {
        for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
            assert!(
                (a - n).abs() <= 1e-6 * (1.0 + n.abs()),
                "{name}[{i}]: {a} vs {n}"
            );
        }
    };
    let fd_x: Vec<f64> = (0..xv.len())
        .map(|i| {
            let (mut p, mut m) = (xv.clone(), xv.clone());
            p[i] += eps;
            m[i] -= eps;
            (net.loss_value(&dev, &p) - net.loss_value(&dev, &m)) / (2.0 * eps)
        })
        .collect();
    check("x", &gx, fd_x);
    for which in 0..3 {
        let base: Vec<f64> = match which {
            0 => net.w1.as_vec(),
            1 => net.b1.as_vec(),
            _ => net.w2.as_vec(),
        };
        let mut numeric = Vec::new();
        for i in 0..base.len() {
            let mut vals = [0.0; 2];
            for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
                let mut v = base.clone();
                v[i] += sign * eps;
                match which {
                    0 => net.w1 = dev.tensor_from_vec(v, *net.w1.shape()),
                    1 => net.b1 = dev.tensor_from_vec(v, *net.b1.shape()),
                    _ => net.w2 = dev.tensor_from_vec(v, *net.w2.shape()),
                }
                vals[k] = net.loss_value(&dev, &xv);
            }
            numeric.push((vals[0] - vals[1]) / (2.0 * eps));
        }
        match which {
            0 => net.w1 = dev.tensor_from_vec(base, *net.w1.shape()),
            1 => net.b1 = dev.tensor_from_vec(base, *net.b1.shape()),
            _ => net.w2 = dev.tensor_from_vec(base, *net.w2.shape()),
        }
        let (name, analytic) = [("w1", &gw1), ("b1", &gb1), ("w2", &gw2)][which];
        check(name, analytic, numeric);
    }
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    let dev = Cpu::default();
    let x = dev.tensor_from_vec(
        vec![0.0f32; 2 * 3 * 4 * 4],
        (2usize, 3usize, 4usize, 4usize),
    );
    let w = dev.tensor_from_vec(
        vec![0.0f32; 5 * 2 * 3 * 3],
        (5usize, 2usize, 3usize, 3usize),
    );
    assert!(
        conv2d(x.clone(), &w, no_bias(), 1, Padding::Same).is_err(),
        "channel mismatch"
    );
    let w = dev.tensor_from_vec(
        vec![0.0f32; 5 * 3 * 9 * 9],
        (5usize, 3usize, 9usize, 9usize),
    );
    assert!(
        conv2d(x, &w, no_bias(), 1, Padding::Valid).is_err(),
        "kernel larger than input"
    );
}

#[test]
fn transposed_convolution_gradients_match_finite_differences() {
    use mouton_models::layers::conv_transpose2d;
    let dev = Cpu::default();
    let (xs, ws, bs) = (
        (2usize, 3usize, 3usize, 3usize),
        (3usize, 2usize, 4usize, 4usize),
        (2usize,),
    );
    let base = [values(2 * 3 * 9, 11), values(3 * 2 * 16, 12), values(2, 13)];
    let r = values(2 * 2 * 6 * 6, 14);
    // L = sum r * tanh(conv_transpose(x, w, b)), 3x3 -> 6x6 (k 4, s 2, p 1).
    let loss = |p: &[Vec<f64>; 3]| -> f64 {
        let x = dev.tensor_from_vec(p[0].clone(), xs);
        let w = dev.tensor_from_vec(p[1].clone(), ws);
        let b = dev.tensor_from_vec(p[2].clone(), bs);
        let y = conv_transpose2d(x, &w, Some(&b), 2, 1, 0).unwrap().tanh();
        let rr = dev.tensor_from_vec(r.clone(), *y.shape());
        (y * rr).sum::<(), _>().array()
    };
    let x = dev.tensor_from_vec(base[0].clone(), xs);
    let w = dev.tensor_from_vec(base[1].clone(), ws);
    let b = dev.tensor_from_vec(base[2].clone(), bs);
    let y = conv_transpose2d(x.clone().trace(Gradients::leaky()), &w, Some(&b), 2, 1, 0)
        .unwrap()
        .tanh();
    assert_eq!(*y.shape(), (2, 2, 6, 6));
    let rr = dev.tensor_from_vec(r.clone(), *y.shape());
    let g = (y * rr).sum::<(), _>().backward();
    let analytic = [g.get(&x).as_vec(), g.get(&w).as_vec(), g.get(&b).as_vec()];
    let eps = 1e-6;
    for k in 0..3 {
        for i in 0..base[k].len() {
            let (mut p, mut m) = (base.clone(), base.clone());
            p[k][i] += eps;
            m[k][i] -= eps;
            let n = (loss(&p) - loss(&m)) / (2.0 * eps);
            let a = analytic[k][i];
            assert!(
                (a - n).abs() <= 1e-6 * (1.0 + n.abs()),
                "param {k}[{i}]: {a} vs {n}"
            );
        }
    }
}

#[test]
fn fused_convolution_and_activation_equal_the_two_ops_chained() {
    let dev = Cpu::default();
    let x = dev.tensor_from_vec(values(3 * 2 * 6 * 6, 11), (3usize, 2usize, 6usize, 6usize));
    let w = dev.tensor_from_vec(values(4 * 2 * 3 * 3, 12), (4usize, 2usize, 3usize, 3usize));
    let b = dev.tensor_from_vec(values(4, 13), (4usize,));
    let r = dev.tensor_from_vec(values(3 * 4 * 3 * 3, 14), (3usize, 4usize, 3usize, 3usize));
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::LeakyRelu(-0.5), // not fused: the derivative needs the input
        Activation::Sigmoid,
        Activation::Tanh,
    ] {
        let run = |fused: bool| {
            let xt = x.clone().trace(Gradients::leaky());
            let y = if fused {
                conv2d_act(xt, &w, Some(&b), 2, Padding::Same, act).unwrap()
            } else {
                activation(conv2d(xt, &w, Some(&b), 2, Padding::Same).unwrap(), act)
            };
            let yv = y.as_vec();
            let g = (y * r.clone()).sum::<(), _>().backward();
            (
                yv,
                g.get(&x).as_vec(),
                g.get(&w).as_vec(),
                g.get(&b).as_vec(),
            )
        };
        let (fused, chained) = (run(true), run(false));
        // Same arithmetic in the same order: equal to the bit.
        assert_eq!(fused, chained, "{act:?}");
        assert!(fused.0.iter().any(|&v| v != 0.0), "{act:?}");
        assert!(fused.2.iter().any(|&v| v != 0.0), "{act:?}");
    }
    // Every activation had both signs to tell apart.
    let pre = conv2d(x.clone(), &w, Some(&b), 2, Padding::Same)
        .unwrap()
        .as_vec();
    assert!(pre.iter().any(|&v| v > 0.0) && pre.iter().any(|&v| v < 0.0));
}

#[test]
fn fused_transposed_convolution_and_activation_equal_the_two_ops_chained() {
    let dev = Cpu::default();
    // 3 images of 2 channels, 5x5 -> 4 channels, 10x10 (k 3, s 2, p 1, output padding 1).
    let x = dev.tensor_from_vec(values(3 * 2 * 5 * 5, 21), (3usize, 2usize, 5usize, 5usize));
    let w = dev.tensor_from_vec(values(2 * 4 * 3 * 3, 22), (2usize, 4usize, 3usize, 3usize));
    let b = dev.tensor_from_vec(values(4, 23), (4usize,));
    let r = dev.tensor_from_vec(
        values(3 * 4 * 10 * 10, 24),
        (3usize, 4usize, 10usize, 10usize),
    );
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::LeakyRelu(-0.5), // not fused: the derivative needs the input
        Activation::Sigmoid,
        Activation::Tanh,
    ] {
        let run = |fused: bool| {
            let xt = x.clone().trace(Gradients::leaky());
            let y = if fused {
                conv_transpose2d_act(xt, &w, Some(&b), 2, 1, 1, act).unwrap()
            } else {
                activation(conv_transpose2d(xt, &w, Some(&b), 2, 1, 1).unwrap(), act)
            };
            let yv = y.as_vec();
            let g = (y * r.clone()).sum::<(), _>().backward();
            (
                yv,
                g.get(&x).as_vec(),
                g.get(&w).as_vec(),
                g.get(&b).as_vec(),
            )
        };
        let (fused, chained) = (run(true), run(false));
        assert_eq!(fused, chained, "{act:?}");
        assert!(fused.0.iter().any(|&v| v != 0.0), "{act:?}");
        assert!(fused.2.iter().any(|&v| v != 0.0), "{act:?}");
    }
    let pre = conv_transpose2d(x.clone(), &w, Some(&b), 2, 1, 1)
        .unwrap()
        .as_vec();
    assert!(pre.iter().any(|&v| v > 0.0) && pre.iter().any(|&v| v < 0.0));
}

/// `dense` against dfdx's own ops on the same values, forward and every gradient: a narrow
/// layer (dot products) and a wide one (GEMM), the wide one large enough to run on all threads.
fn dense_matches_dfdx<const I: usize, const O: usize>(n: usize) {
    let dev = Cpu::default();
    let x = dev.tensor_from_vec(values(n * I, 1), (n, Const::<I>));
    let w: Tensor<Rank2<O, I>, f64, Cpu> = dev.tensor_from_vec(values(O * I, 2), (Const, Const));
    let b: Tensor<Rank1<O>, f64, Cpu> = dev.tensor_from_vec(values(O, 3), (Const,));
    let r = dev.tensor_from_vec(values(n * O, 4), (n, Const::<O>));
    let run = |ours: bool| {
        let t = x.clone().trace(Gradients::leaky());
        let y = if ours {
            dense(t, &w, &b)
        } else {
            type Tp = OwnedTape<f64, Cpu>;
            t.matmul(w.retaped::<Tp>().permute())
                + b.retaped::<Tp>().broadcast_like(&(n, Const::<O>))
        };
        let yv = y.as_vec();
        let grads = (y * r.clone()).sum::<(), _>().backward();
        (
            yv,
            grads.get(&x).as_vec(),
            grads.get(&w).as_vec(),
            grads.get(&b).as_vec(),
        )
    };
    let (a, e) = (run(true), run(false));
    for (what, u, v) in [
        ("y", &a.0, &e.0),
        ("grad x", &a.1, &e.1),
        ("grad w", &a.2, &e.2),
        ("grad b", &a.3, &e.3),
    ] {
        assert_eq!(u.len(), v.len(), "{what}");
        for (k, (p, q)) in u.iter().zip(v).enumerate() {
            assert!(
                (p - q).abs() <= 1e-12 * (1.0 + q.abs()),
                "{what}[{k}]: {p} vs {q} ({n} x {I} -> {O})"
            );
        }
        assert!(u.iter().any(|&p| p != 0.0), "{what} all zero");
    }
}

#[test]
fn dense_equals_dfdx_matmul_plus_bias() {
    dense_matches_dfdx::<37, 1>(5);
    dense_matches_dfdx::<2048, 1>(64);
    dense_matches_dfdx::<20, 5>(3);
    dense_matches_dfdx::<20, 9>(3);
    dense_matches_dfdx::<128, 600>(64);
}

/// Every layer, fed a view that is not laid out row-major (NHWC images permuted to NCHW, or
/// a broadcast), gives the values and gradients it gives the same values copied row-major.
#[test]
fn layers_take_permuted_and_broadcast_views() {
    use mouton_models::layers::{
        batch_norm_nchw, batch_norm_nchw_eval, conv_transpose2d, mul_constant, upsample_nearest,
    };
    let dev = Cpu::default();
    let (n, c, h, w) = (2usize, 3usize, 4usize, 5usize);
    let nhwc = dev.tensor_from_vec(values(n * h * w * c, 11), (n, h, w, c));
    let row = dev.tensor_from_vec(values(c * w, 12), (c, w));
    let wt = dev.tensor_from_vec(values(4 * c * 9, 13), (4usize, c, 3usize, 3usize));
    let wt_t = dev.tensor_from_vec(values(c * 2 * 9, 14), (c, 2usize, 3usize, 3usize));
    let (g, b) = (
        dev.tensor_from_vec(values(c, 15), (c,)),
        dev.tensor_from_vec(values(c, 16), (c,)),
    );
    // Constants that are views themselves: a broadcast variance, a permuted factor.
    let sq = dev.tensor(1.5).broadcast_like::<_, Axis<0>>(&(c,));
    let k = dev
        .tensor_from_vec(values(n * h * w * c, 18), (n, h, w, c))
        .permute::<_, Axes4<0, 3, 1, 2>>();
    type Layer<'a> = dyn Fn(Nchw) -> Nchw + 'a;
    type Nchw = Tensor<(usize, usize, usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>;
    let layers: Vec<(&str, Box<Layer<'_>>)> = vec![
        (
            "conv2d",
            Box::new(|x| conv2d(x, &wt, no_bias(), 1, Padding::Same).unwrap()),
        ),
        (
            "conv_transpose2d",
            Box::new(|x| conv_transpose2d(x, &wt_t, no_bias(), 2, 1, 1).unwrap()),
        ),
        (
            "batch_norm_nchw",
            Box::new(|x| batch_norm_nchw(x, &g, &b, None, 1e-5, 0.1).unwrap()),
        ),
        (
            "batch_norm_nchw_eval",
            Box::new(|x| batch_norm_nchw_eval(x, &g, &b, &g, &sq, 1e-5).unwrap()),
        ),
        ("mul_constant", Box::new(|x| mul_constant(x, &k).unwrap())),
        ("upsample_nearest", Box::new(|x| upsample_nearest(x, 2))),
        ("activation", Box::new(|x| activation(x, Activation::Tanh))),
    ];
    // (name, the view)
    let views = [
        ("permuted", nhwc.clone().permute::<_, Axes4<0, 3, 1, 2>>()),
        (
            "broadcast",
            row.clone().broadcast_like::<_, Axes2<0, 2>>(&(n, c, h, w)),
        ),
    ];
    for (layer, f) in &layers {
        for (kind, view) in &views {
            let copy = dev.tensor_from_vec(view.as_vec(), (n, c, h, w));
            let y_copy = f(copy.leaky_trace());
            let r = dev.tensor_from_vec(values(y_copy.shape().num_elements(), 17), *y_copy.shape());
            let yc = y_copy.retaped::<NoneTape>().as_vec();
            let gc = (y_copy * r.clone())
                .sum::<(), _>()
                .backward()
                .get(&copy)
                .as_vec();
            // The same through the view: its gradient flows back to the view's source.
            let permuted = *kind == "permuted";
            let y_view = if permuted {
                f(nhwc.leaky_trace().permute::<_, Axes4<0, 3, 1, 2>>())
            } else {
                f(row
                    .leaky_trace()
                    .broadcast_like::<_, Axes2<0, 2>>(&(n, c, h, w)))
            };
            let yv = y_view.retaped::<NoneTape>().as_vec();
            let grads = (y_view * r).sum::<(), _>().backward();
            assert_eq!(yv, yc, "{layer} on a {kind} view: values");
            // The copy's gradient, summed back through the view, is the source's.
            let gt = dev.tensor_from_vec(gc, (n, c, h, w));
            let (expected, got) = if permuted {
                let e = gt.permute::<_, Axes4<0, 2, 3, 1>>().as_vec();
                (e, grads.get(&nhwc).as_vec())
            } else {
                (
                    gt.sum::<_, Axes2<0, 2>>().as_vec(),
                    grads.get(&row).as_vec(),
                )
            };
            let err = got
                .iter()
                .zip(&expected)
                .map(|(a, e)| (a - e).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-12,
                "{layer} on a {kind} view: gradient off by {err}"
            );
        }
    }
}

/// A parameter that is a view is an error (its gradient could not be written), except in the
/// dense layer, which falls back to dfdx's own ops; the critics' slopes read views in order.
#[test]
fn parameters_laid_out_as_views() {
    use mouton_models::critic::activation_slopes;
    use mouton_models::ops::conv2d::GeometryError;
    let dev = Cpu::default();
    let x = dev.tensor_from_vec(values(2 * 3 * 4 * 4, 21), (2usize, 3usize, 4usize, 4usize));
    let w = dev.tensor_from_vec(values(3 * 2 * 9, 22), (2usize, 3usize, 3usize, 3usize));
    let permuted = w.clone().permute::<_, Axes4<0, 1, 3, 2>>();
    let err = conv2d(x.clone(), &permuted, no_bias(), 1, Padding::Same).unwrap_err();
    assert_eq!(err, GeometryError::NotRowMajor("weights"));
    assert!(err.to_string().contains("row-major"), "{err}");
    assert!(conv2d(x.clone(), &w, no_bias(), 1, Padding::Same).is_ok());
    // Tied weights: the transpose of a (3, 4) matrix as the (4, 3) weights of a dense layer.
    let m = dev.tensor_from_vec(values(12, 23), (Const::<3>, Const::<4>));
    let copy = dev.tensor_from_vec(
        m.clone().permute::<_, Axes2<1, 0>>().as_vec(),
        (Const::<4>, Const::<3>),
    );
    let bias = dev.tensor_from_vec(values(4, 24), (Const::<4>,));
    let xs = dev.tensor_from_vec(values(2 * 3, 25), (2usize, Const::<3>));
    let y_view = dense(
        xs.leaky_trace(),
        &m.clone().permute::<_, Axes2<1, 0>>(),
        &bias,
    );
    let y_copy = dense(xs.leaky_trace(), &copy, &bias);
    let close = |a: Vec<f64>, b: Vec<f64>| {
        assert_eq!(a.len(), b.len());
        let err = a
            .iter()
            .zip(&b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "off by {err}");
    };
    close(
        y_view.retaped::<NoneTape>().as_vec(),
        y_copy.retaped::<NoneTape>().as_vec(),
    );
    let gm = y_view.sum::<(), _>().backward().get(&m).as_vec();
    let gc = y_copy.sum::<(), _>().backward().get(&copy);
    close(gm, gc.permute::<_, Axes2<1, 0>>().as_vec());
    // The slopes of a permuted view are the view's, in its order.
    let v = x.clone().permute::<_, Axes4<0, 1, 3, 2>>();
    let s = activation_slopes(&v, Activation::LeakyRelu(0.2))
        .unwrap()
        .as_vec();
    let want: Vec<f64> = v
        .as_vec()
        .iter()
        .map(|&e| if e > 0.0 { 1.0 } else { 0.2 })
        .collect();
    assert_eq!(s, want);
}
