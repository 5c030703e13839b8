//! DCGAN: parameter counts, shapes, N(0, 0.02) initialization, the batch-norm-2d gradients
//! against finite differences, and the refusal of a per-sample tangent pass.

use dfdx::prelude::*;
use mouton_models::critic::Critic;
use mouton_models::dcgan::{DcganDiscriminator, DcganGenerator};
use mouton_models::generator::{Generator, OutputRange};
use mouton_models::layers::{batch_norm_nchw, Nchw};

#[test]
fn shapes_counts_initialization_and_range() {
    let dev = Cpu::seed_from_u64(1);
    let mut g = DcganGenerator::<f32, Cpu>::build(&dev);
    let d = DcganDiscriminator::<f32, Cpu>::build(&dev);
    assert_eq!(g.num_trainable_params(), 1_781_504);
    assert_eq!(DcganGenerator::<f32, Cpu>::summary().total(), 1_781_504);
    assert_eq!(d.num_trainable_params(), 138_624);
    assert_eq!(DcganDiscriminator::<f32, Cpu>::summary().total(), 138_624);
    let w = g.t2.as_vec();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let std = (w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
    assert!(
        mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3,
        "N(0, 0.02): {mean} {std}"
    );
    let z: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(4, 100));
    let x = g.generate(z.clone(), true).unwrap();
    assert_eq!(*x.shape(), (4, 1, 28, 28));
    assert_eq!(g.output_range(), OutputRange::MinusOneOne);
    assert!(x.as_vec().iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(
        g.generate(z, false).is_ok(),
        "inference uses the running statistics"
    );
    let s = d.score(x, None).unwrap();
    assert_eq!(s.shape().0, 4);
    let err = d
        .tangent(
            dev.zeros_like(&(4usize, 1usize, 28usize, 28usize)),
            &d.score_recorded(dev.zeros_like(&(4usize, 1usize, 28usize, 28usize)), None)
                .unwrap()
                .1,
        )
        .unwrap_err();
    assert!(err.to_string().contains("WGAN-GP"), "{err}");
}

#[test]
fn batch_norm_2d_gradients_match_finite_differences() {
    let dev = Cpu::seed_from_u64(2);
    let x: Nchw<f64, NoneTape> = dev.sample_normal_like(&(3, 2, 2, 3));
    let w: Nchw<f64, NoneTape> = dev.sample_normal_like(&(3, 2, 2, 3));
    let g = dev.tensor_from_vec(vec![0.7f64, 1.3], (2usize,));
    let b = dev.tensor_from_vec(vec![0.1f64, -0.4], (2usize,));
    let f = |x: &Nchw<f64, NoneTape>, g: &Tensor<(usize,), f64, Cpu>| {
        let y = batch_norm_nchw(x.clone(), g, &b, None, 1e-3, 0.1).unwrap();
        y.as_vec()
            .iter()
            .zip(w.as_vec())
            .map(|(a, c)| a * c)
            .sum::<f64>()
    };
    let y = batch_norm_nchw(x.leaky_trace(), &g, &b, None, 1e-3, 0.1).unwrap();
    let grads = (y * w.clone()).sum::<(), _>().backward();
    let (gx, gg) = (grads.get(&x).as_vec(), grads.get(&g).as_vec());
    let h = 1e-6;
    let xv = x.as_vec();
    for k in 0..xv.len() {
        let mut p = xv.clone();
        p[k] += h;
        let mut m = xv.clone();
        m[k] -= h;
        let fd = (f(&dev.tensor_from_vec(p, (3, 2, 2, 3)), &g)
            - f(&dev.tensor_from_vec(m, (3, 2, 2, 3)), &g))
            / (2.0 * h);
        assert!(
            (fd - gx[k]).abs() < 1e-6 * (1.0 + fd.abs()),
            "dx[{k}]: {fd} vs {}",
            gx[k]
        );
    }
    for k in 0..2 {
        let mut p = g.as_vec();
        p[k] += h;
        let mut m = g.as_vec();
        m[k] -= h;
        let fd = (f(&x, &dev.tensor_from_vec(p, (2,))) - f(&x, &dev.tensor_from_vec(m, (2,))))
            / (2.0 * h);
        assert!((fd - gg[k]).abs() < 1e-6 * (1.0 + fd.abs()));
    }
}

/// The 32 and 64 px pairs: pytorch/examples' layer plan with one channel, its parameter counts
/// (PyTorch's `sum(p.numel())` for nc = 1, ngf = ndf = 64), shapes, range and refusals.
fn sized_pair<G, D>(side: usize, g_params: usize, d_params: usize, g: &mut G, d: &D)
where
    G: Generator<f32> + TensorCollection<f32, Cpu>,
    D: Critic<f32> + TensorCollection<f32, Cpu>,
{
    assert_eq!(g.num_trainable_params(), g_params);
    assert_eq!(d.num_trainable_params(), d_params);
    let dev = Cpu::seed_from_u64(3);
    let z: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(3, 100));
    let x = g.generate(z.clone(), true).unwrap();
    assert_eq!(*x.shape(), (3, 1, side, side));
    assert!(x.as_vec().iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(g.generate(z, false).is_ok());
    let s = d.score(x, None).unwrap();
    assert_eq!(s.shape().0, 3);
    assert!(s.as_vec().iter().all(|v| v.is_finite()));
    let wrong: Nchw<f32, NoneTape> = dev.zeros_like(&(2, 1, 28, 28));
    let err = d.score(wrong.clone(), None).unwrap_err();
    assert!(
        err.to_string().contains(&format!("{side}, {side}")),
        "{err}"
    );
    let rec = d.score_recorded(dev.zeros_like(&(2, 1, side, side)), None);
    let err = d.tangent(wrong, &rec.unwrap().1).unwrap_err();
    assert!(err.to_string().contains("WGAN-GP"), "{err}");
}

#[test]
fn dcgan_32_and_64() {
    use mouton_models::dcgan::{
        DcganDiscriminator32, DcganDiscriminator64, DcganGenerator32, DcganGenerator64,
    };
    let dev = Cpu::seed_from_u64(4);
    let mut g = DcganGenerator32::<f32, Cpu>::build(&dev);
    let d = DcganDiscriminator32::<f32, Cpu>::build(&dev);
    assert_eq!(DcganGenerator32::<f32, Cpu>::summary().total(), 1_066_880);
    assert_eq!(DcganDiscriminator32::<f32, Cpu>::summary().total(), 661_248);
    sized_pair(32, 1_066_880, 661_248, &mut g, &d);
    let mut g = DcganGenerator64::<f32, Cpu>::build(&dev);
    let d = DcganDiscriminator64::<f32, Cpu>::build(&dev);
    assert_eq!(DcganGenerator64::<f32, Cpu>::summary().total(), 3_574_656);
    assert_eq!(
        DcganDiscriminator64::<f32, Cpu>::summary().total(),
        2_763_520
    );
    let table = DcganGenerator64::<f32, Cpu>::summary().to_string();
    assert!(
        table.contains("(1, 64, 64)") && table.contains("(512, 4, 4)"),
        "{table}"
    );
    let w = d.down3.c.as_vec();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!((std - 0.02).abs() < 1e-3, "N(0, 0.02): {std}");
    sized_pair(64, 3_574_656, 2_763_520, &mut g, &d);
}
