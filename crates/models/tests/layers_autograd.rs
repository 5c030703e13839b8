//! The dfdx op: gradients through a small graph (two chained convolutions and dfdx's own ops)
//! match finite differences of the whole graph, in f64; the fused convolution + activation
//! equals the two ops chained; the dense op equals dfdx's matmul and broadcast addition.

use crate::common::values;

use dfdx::prelude::*;
use mouton_models::layers::{activation, conv2d, conv2d_act, dense, no_bias};
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
