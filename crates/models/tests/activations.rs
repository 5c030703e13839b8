//! The fused activations against dfdx's own ops and closed forms, values and gradients.

use dfdx::prelude::*;
use mouton_models::layers::activation;
use mouton_models::ops::activation::{activation_backward, activation_forward, Activation};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn match_dfdx_ops(v in prop::collection::vec(-20.0f64..20.0, 1..300)) {
        let dev = Cpu::default();
        let n = v.len();
        let ours = |act| {
            let x = dev.tensor_from_vec(v.clone(), (n,));
            let y = activation(x.trace(Gradients::leaky()), act);
            let yv = y.as_vec();
            let g = (y * y_weights(&dev, n)).sum::<(), _>().backward();
            (yv, g.get(&x).as_vec())
        };
        let theirs = |f: &dyn Fn(Traced) -> Traced| {
            let x = dev.tensor_from_vec(v.clone(), (n,));
            let y = f(x.trace(Gradients::leaky()));
            let yv = y.as_vec();
            let g = (y * y_weights(&dev, n)).sum::<(), _>().backward();
            (yv, g.get(&x).as_vec())
        };
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        for (act, (yt, gt)) in [
            (Activation::Relu, theirs(&|x| x.relu())),
            (Activation::Sigmoid, theirs(&|x| x.sigmoid())),
            (Activation::Tanh, theirs(&|x| x.tanh())),
        ] {
            let (yo, go) = ours(act);
            prop_assert!(close(&yo, &yt), "{:?} values", act);
            prop_assert!(close(&go, &gt), "{:?} gradients", act);
        }
        // LeakyReLU against its closed form.
        let (yo, go) = ours(Activation::LeakyRelu(0.2));
        let w = y_weights(&dev, n).as_vec();
        for i in 0..n {
            let x = v[i];
            prop_assert_eq!(yo[i], if x > 0.0 { x } else { 0.2 * x });
            prop_assert_eq!(go[i], if x > 0.0 { w[i] } else { 0.2 * w[i] });
        }
    }

    #[test]
    fn gradients_match_finite_differences(v in prop::collection::vec(-4.0f64..4.0, 1..50)) {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::LeakyRelu(0.2), Activation::Relu] {
            let mut y = vec![0.0; v.len()];
            activation_forward(act, &v, &mut y);
            let mut g = vec![0.0; v.len()];
            activation_backward(act, &v, &y, &vec![1.0; v.len()], &mut g);
            for i in 0..v.len() {
                if v[i].abs() < 1e-3 {
                    continue; // a kink: finite differences straddle it
                }
                let h = 1e-6;
                let f = |x: f64| { let mut o = [0.0]; activation_forward(act, &[x], &mut o); o[0] };
                let d = (f(v[i] + h) - f(v[i] - h)) / (2.0 * h);
                prop_assert!((g[i] - d).abs() <= 1e-7 * (1.0 + d.abs()), "{:?} at {}: {} vs {}", act, v[i], g[i], d);
            }
        }
    }
}

type Traced = Tensor<(usize,), f64, Cpu, OwnedTape<f64, Cpu>>;

fn y_weights(dev: &Cpu, n: usize) -> Tensor<(usize,), f64, Cpu> {
    dev.tensor_from_vec((0..n).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect(), (n,))
}

#[test]
fn sigmoid_is_finite_on_extreme_inputs() {
    let x = [-1e4f32, -100.0, 0.0, 100.0, 1e4];
    let mut y = [0.0f32; 5];
    activation_forward(Activation::Sigmoid, &x, &mut y);
    assert_eq!((y[0], y[2], y[3], y[4]), (0.0, 0.5, 1.0, 1.0));
    assert!(
        y[1] > 0.0 && y[1] < 1e-40,
        "sigmoid(-100) = e^-100, subnormal in f32: {}",
        y[1]
    );
    let large: Vec<f32> = (0..100_000).map(|i| i as f32 / 1000.0 - 50.0).collect();
    let mut out = vec![0.0f32; large.len()];
    activation_forward(Activation::Tanh, &large, &mut out);
    assert!(out.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
}
