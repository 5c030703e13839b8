//! The critics' tangent pass against finite differences (f64), with and without dropout, and its
//! weight gradient against finite differences of the tangent itself.

use dfdx::prelude::*;
use mouton_models::critic::Critic;
use mouton_models::layers::Nchw;
use mouton_models::sheep::Sheep2Critic;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn images(dev: &Cpu, n: usize) -> Nchw<f64, NoneTape> {
    dev.sample_normal_like(&(n, 1, 28, 28))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// D(x + h u) - D(x) = h J(x) u exactly while no kink is crossed between x and x + h u; the
    /// records tell whether one was, and such samples are skipped (they are rare at h = 1e-6).
    #[test]
    fn tangent_is_the_directional_derivative(seed in 0u64..1000, dropout in any::<bool>()) {
        let dev = Cpu::seed_from_u64(seed);
        let d = Sheep2Critic::<f64, Cpu>::build(&dev);
        let (x, u) = (images(&dev, 3), images(&dev, 3));
        let h = 1e-6;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (s0, rec0) = d.score_recorded(x.clone(), dropout.then_some(&mut rng as _)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed); // the same dropout mask again
        let (s1, rec1) = d
            .score_recorded(x + u.clone() * h, dropout.then_some(&mut rng as _))
            .unwrap();
        prop_assert_eq!(rec0.dropout.is_some(), dropout);
        let ju = d.tangent(u, &rec0).unwrap().as_vec();
        let (s0, s1) = (s0.as_vec(), s1.as_vec());
        let crossed: Vec<bool> = (0..3)
            .map(|i| {
                rec0.slopes.iter().zip(&rec1.slopes).any(|(a, b)| {
                    let (a, b) = (a.as_vec(), b.as_vec());
                    let per = a.len() / 3;
                    a[i * per..(i + 1) * per] != b[i * per..(i + 1) * per]
                })
            })
            .collect();
        for i in 0..3 {
            if crossed[i] {
                continue;
            }
            let fd = (s1[i] - s0[i]) / h;
            prop_assert!((fd - ju[i]).abs() <= 1e-6 * (1.0 + ju[i].abs()), "{} vs {}", fd, ju[i]);
        }
        prop_assert!(crossed.iter().filter(|&&c| !c).count() >= 1, "every sample crossed a kink");
    }
}

/// The tangent is a graph in the weights: its gradient matches finite differences on a few
/// weights of every layer, and no bias receives a gradient (biases do not enter J u).
#[test]
fn tangent_weight_gradient_matches_finite_differences() {
    let dev = Cpu::seed_from_u64(11);
    let mut d = Sheep2Critic::<f64, Cpu>::build(&dev);
    let (x, u) = (images(&dev, 2), images(&dev, 2));
    let (_, rec) = d.score_recorded(x, None).unwrap();
    let grads = d.alloc_grads();
    let t = d.tangent(u.clone().traced(grads), &rec).unwrap();
    let grads = t.sum::<(), _>().backward();
    let tangent_sum = |d: &Sheep2Critic<f64, Cpu>| {
        d.tangent(u.clone(), &rec)
            .unwrap()
            .as_vec()
            .iter()
            .sum::<f64>()
    };
    let h = 1e-5;
    macro_rules! check {
        ($field:ident) => {{
            let g = grads.get(&d.$field.weight).as_vec();
            let mut w = d.$field.weight.as_vec();
            for &k in &[0usize, 7, w.len() / 2, w.len() - 1] {
                let orig = w[k];
                w[k] = orig + h;
                d.$field.weight.copy_from(&w);
                let plus = tangent_sum(&d);
                w[k] = orig - h;
                d.$field.weight.copy_from(&w);
                let minus = tangent_sum(&d);
                w[k] = orig;
                d.$field.weight.copy_from(&w);
                let fd = (plus - minus) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * (1.0 + g[k].abs()),
                    "{}[{k}]: {fd} vs {}",
                    stringify!($field),
                    g[k]
                );
            }
            let gb = grads.get(&d.$field.bias).as_vec();
            assert!(
                gb.iter().all(|&v| v == 0.0),
                "bias gradient must be exactly 0"
            );
        }};
    }
    check!(conv1);
    check!(conv2);
    check!(conv3);
    check!(dense);
}

#[test]
fn tangent_rejects_a_record_for_another_batch() {
    let dev = Cpu::seed_from_u64(1);
    let d = Sheep2Critic::<f32, Cpu>::build(&dev);
    let x: Nchw<f32, NoneTape> = dev.sample_normal_like(&(2, 1, 28, 28));
    let (_, rec) = d.score_recorded(x, None).unwrap();
    let u: Nchw<f32, NoneTape> = dev.sample_normal_like(&(3, 1, 28, 28));
    assert!(d.tangent(u, &rec).is_err());
}
