//! conv2d and conv_transpose2d (values and gradients with respect to input, weights and bias)
//! against PyTorch's F.conv2d / F.conv_transpose2d (fixture: `bench/conv_fixture.py`, float64):
//! f32 within 1e-5 and f64 within 1e-12 of each tensor's largest entry.

use dfdx::prelude::*;
use mouton_models::layers::{conv2d, conv_transpose2d};
use mouton_models::ops::conv2d::Padding;
use mouton_models::ops::Real;
use serde_json::Value;

fn uniform(tag: u64, n: usize) -> Vec<f64> {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n as u64)
        .map(|k| {
            let mut z = k
                .wrapping_add(tag.wrapping_mul(GOLDEN))
                .wrapping_add(GOLDEN);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-53) * 2.0 - 1.0
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(name: &str, got: &[f64], want: &[f64], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let scale = want.iter().fold(1e-30f64, |a, &b| a.max(b.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs() / scale));
    assert!(err <= tol, "{name}: error {err:e} > {tol:e}");
    err
}

fn check<E: Dtype + Real + num_traits::Float>(tol: f64)
where
    Cpu: Device<E>,
{
    let fx: Value = serde_json::from_str(include_str!("fixtures/conv_torch.json")).unwrap();
    let dev = Cpu::default();
    let mut worst = 0.0f64;
    for case in fx["cases"].as_array().unwrap() {
        let u = |k: &str| case[k].as_u64().unwrap() as usize;
        let (n, c, h, w, o, k, s, tags) = (
            u("n"),
            u("c"),
            u("h"),
            u("w"),
            u("o"),
            u("k"),
            u("stride"),
            case["tags"].as_u64().unwrap(),
        );
        let op = case["op"].as_str().unwrap();
        let cast = |v: Vec<f64>| v.into_iter().map(E::of).collect::<Vec<E>>();
        let x = dev.tensor_from_vec(cast(uniform(tags, n * c * h * w)), (n, c, h, w));
        let wshape = if op == "conv2d" {
            (o, c, k, k)
        } else {
            (c, o, k, k)
        };
        let wt = dev.tensor_from_vec(cast(uniform(tags + 1, o * c * k * k)), wshape);
        let b = dev.tensor_from_vec(cast(uniform(tags + 2, o)), (o,));
        let y = if op == "conv2d" {
            let padding = match &case["padding"] {
                Value::String(_) => Padding::Same,
                p => {
                    let p: Vec<usize> = p
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect();
                    Padding::Explicit {
                        top: p[0],
                        bottom: p[1],
                        left: p[2],
                        right: p[3],
                    }
                }
            };
            conv2d(x.leaky_trace(), &wt, Some(&b), s, padding).unwrap()
        } else {
            conv_transpose2d(
                x.leaky_trace(),
                &wt,
                Some(&b),
                s,
                u("padding"),
                u("output_padding"),
            )
            .unwrap()
        };
        let want_shape: Vec<usize> = case["y_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (a, bb, cc, d) = *y.shape();
        assert_eq!(vec![a, bb, cc, d], want_shape, "{op} shape");
        let r = dev.tensor_from_vec(cast(uniform(tags + 3, a * bb * cc * d)), *y.shape());
        let to64 = |v: Vec<E>| {
            v.into_iter()
                .map(|x| x.to_f64().unwrap())
                .collect::<Vec<f64>>()
        };
        worst = worst.max(close(
            &format!("{op} y"),
            &to64(y.as_vec()),
            &floats(&case["y"]),
            tol,
        ));
        let grads = (y * r).sum::<(), _>().backward();
        worst = worst.max(close(
            &format!("{op} dx"),
            &to64(grads.get(&x).as_vec()),
            &floats(&case["gx"]),
            tol,
        ));
        worst = worst.max(close(
            &format!("{op} dw"),
            &to64(grads.get(&wt).as_vec()),
            &floats(&case["gw"]),
            tol,
        ));
        worst = worst.max(close(
            &format!("{op} db"),
            &to64(grads.get(&b).as_vec()),
            &floats(&case["gb"]),
            tol,
        ));
    }
    println!(
        "{}: worst error {worst:e} over {} cases",
        std::any::type_name::<E>(),
        fx["cases"].as_array().unwrap().len()
    );
}

#[test]
fn conv_ops_match_pytorch_f32() {
    check::<f32>(1e-5);
}

#[test]
fn conv_ops_match_pytorch_f64() {
    check::<f64>(1e-12);
}
