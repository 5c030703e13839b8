//! CUDA kernels against the CPU kernels on random inputs (feature `cuda`; needs a GPU, else
//! each test prints why it is skipped). Relative error: max |cuda - cpu| / max(|cpu|, 1e-3)
//! over a tensor, at most 1e-4 in f32.
#![cfg(feature = "cuda")]

use cudarc::driver::CudaSlice;
use dfdx::nn::ToDevice;
use dfdx::prelude::*;
use mouton_models::critic::{activation_slopes, Critic};
use mouton_models::layers::fused_update::{FusedOptimizer, Rule};
use mouton_models::layers::{
    activation, batch_norm_nchw, batch_norm_nchw_eval, conv2d, conv2d_act, conv_transpose2d,
    mul_constant, open_cuda, upsample_nearest, Nchw,
};
use mouton_models::ops::activation::Activation;
use mouton_models::ops::conv2d::Padding;
use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator};
use rand::{Rng, SeedableRng};

const TOL: f32 = 1e-4;

fn gpu() -> Option<Cuda> {
    match open_cuda(0, 0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("SKIPPED: no CUDA device: {e}");
            None
        }
    }
}

fn rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn check(what: &str, cuda: &[f32], cpu: &[f32]) {
    let r = rel(cuda, cpu);
    println!("{what}: relative error {r:.2e} over {} values", cpu.len());
    assert!(r <= TOL, "{what}: relative error {r} > {TOL}");
}

/// [`check`] on the gradients the two devices' tapes hold for one tensor.
fn check_grad<S: Shape>(
    what: &str,
    (grads_gpu, t_gpu): (&Gradients<f32, Cuda>, &Tensor<S, f32, Cuda>),
    (grads_cpu, t_cpu): (&Gradients<f32, Cpu>, &Tensor<S, f32, Cpu>),
) {
    check(
        what,
        &grads_gpu.get(t_gpu).as_vec(),
        &grads_cpu.get(t_cpu).as_vec(),
    );
}

fn random(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

#[test]
fn conv2d_forward_and_all_gradients_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    conv2d_cases_match_the_cpu(&gpu, "conv2d");
}

/// cuDNN opened for this thread's convolutions, or why not (a skip, unless
/// `MOUTON_REQUIRE_CUDNN=1`, as `scripts/gpu-check.sh` sets, makes it a failure).
fn cudnn_on() -> bool {
    match mouton_models::layers::set_cudnn_convs(true) {
        Ok(version) => {
            println!("cuDNN {version}");
            true
        }
        Err(e) if std::env::var("MOUTON_REQUIRE_CUDNN").as_deref() != Ok("1") => {
            println!("SKIPPED: {e}");
            false
        }
        Err(e) => panic!("cuDNN required: {e}"),
    }
}

#[test]
fn cudnn_convolutions_match_the_cpu_and_repeat_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    if !cudnn_on() {
        return;
    }
    // The same cases: those with symmetric padding through cuDNN, the others through ours.
    conv2d_cases_match_the_cpu(&gpu, "cuDNN conv2d");
    conv_transpose2d_cases_match_the_cpu(&gpu, "cuDNN conv_transpose2d");
    // Deterministic algorithms only: the same inputs give the same bits, gradients included.
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (n, c, h, w, o, k) = (16, 64, 14, 14, 128, 3);
    let xv = random(&mut rng, n * c * h * w);
    let wv = random(&mut rng, o * c * k * k);
    let run = || {
        let x: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let wt = gpu.tensor_from_vec(wv.clone(), (o, c, k, k));
        let y = conv2d(
            x.leaky_trace(),
            &wt,
            mouton_models::layers::no_bias(),
            1,
            Padding::Same,
        )
        .unwrap();
        let yv = y.retaped::<NoneTape>().as_vec();
        let g = y.square().sum::<(), _>().backward();
        (yv, g.get(&x).as_vec(), g.get(&wt).as_vec())
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let (a, b) = (run(), run());
    assert_eq!(bits(&a.0), bits(&b.0), "cuDNN forward repeats");
    assert_eq!(bits(&a.1), bits(&b.1), "cuDNN input gradient repeats");
    assert_eq!(bits(&a.2), bits(&b.2), "cuDNN weight gradient repeats");
    mouton_models::layers::set_cudnn_convs(false).unwrap();
}

fn conv2d_cases_match_the_cpu(gpu: &Cuda, label: &str) {
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // (n, c, h, w, o, k, stride, padding): SHEEP1's layers, smaller batches, and odd cases;
    // up to 8 output channels run the direct kernels (weights in shared memory up to 8,192 per
    // output channel; at most 48 taps; images in chunks of up to 8 for the weight gradient of
    // under 1,024 (o, c) pairs), more the im2col + GEMM path.
    let cases = [
        (4, 1, 28, 28, 64, 4, 2, Padding::Same),
        (3, 64, 14, 14, 128, 4, 2, Padding::Same),
        (2, 128, 7, 7, 128, 4, 2, Padding::Same),
        (2, 64, 14, 14, 128, 3, 1, Padding::Same),
        (2, 256, 28, 28, 1, 5, 1, Padding::Same),
        (3, 5, 9, 11, 7, 3, 2, Padding::Valid),
        (3, 5, 9, 11, 9, 3, 2, Padding::Valid),
        (2, 3, 10, 70, 2, 3, 1, Padding::Same),
        (2, 3, 10, 70, 12, 4, 2, Padding::Same),
        (2, 400, 6, 6, 1, 5, 1, Padding::Same),
        (2, 2, 12, 12, 3, 7, 1, Padding::Same),
        // Enough images for the direct weight gradient to split them into chunks.
        (20, 3, 9, 9, 2, 3, 1, Padding::Same),
        (3, 4, 11, 9, 2, 4, 3, Padding::Valid),
        (
            2,
            3,
            8,
            6,
            4,
            2,
            1,
            Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 1,
                right: 1,
            },
        ),
    ];
    for (i, (n, c, h, w, o, k, s, pad)) in cases.into_iter().enumerate() {
        // Every third case without a bias.
        let biased = i % 3 != 2;
        let xv = random(&mut rng, n * c * h * w);
        let wv = random(&mut rng, o * c * k * k);
        let bv = random(&mut rng, o);
        let x_cpu: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let w_cpu = cpu.tensor_from_vec(wv.clone(), (o, c, k, k));
        let b_cpu = cpu.tensor_from_vec(bv.clone(), (o,));
        let y_cpu = conv2d(
            x_cpu.leaky_trace(),
            &w_cpu,
            biased.then_some(&b_cpu),
            s,
            pad,
        )
        .unwrap();
        let shape = *y_cpu.shape();
        let r = random(&mut rng, shape.num_elements());
        let r_cpu = cpu.tensor_from_vec(r.clone(), shape);
        let y_cpu_v = y_cpu.retaped::<NoneTape>().as_vec();
        let g_cpu = (y_cpu * r_cpu).sum::<(), _>().backward();

        let x_gpu: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(xv, (n, c, h, w));
        let w_gpu = gpu.tensor_from_vec(wv, (o, c, k, k));
        let b_gpu = gpu.tensor_from_vec(bv, (o,));
        let y_gpu = conv2d(
            x_gpu.leaky_trace(),
            &w_gpu,
            biased.then_some(&b_gpu),
            s,
            pad,
        )
        .unwrap();
        assert_eq!(*y_gpu.shape(), shape);
        let r_gpu = gpu.tensor_from_vec(r, shape);
        let y_gpu_v = y_gpu.retaped::<NoneTape>().as_vec();
        let g_gpu = (y_gpu * r_gpu).sum::<(), _>().backward();
        let what = format!("{label} {n}x{c}x{h}x{w} -> {o}, k{k} s{s} {pad:?}, bias {biased}");
        check(&format!("{what} output"), &y_gpu_v, &y_cpu_v);
        check_grad(&format!("{what} d/dx"), (&g_gpu, &x_gpu), (&g_cpu, &x_cpu));
        check_grad(&format!("{what} d/dw"), (&g_gpu, &w_gpu), (&g_cpu, &w_cpu));
        if biased {
            check_grad(&format!("{what} d/db"), (&g_gpu, &b_gpu), (&g_cpu, &b_cpu));
        }
    }
}

#[test]
fn conv_transpose2d_forward_and_all_gradients_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    conv_transpose2d_cases_match_the_cpu(&gpu, "conv_transpose2d");
}

fn conv_transpose2d_cases_match_the_cpu(gpu: &Cuda, label: &str) {
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    // (n, cin, h, w, cout, k, stride, padding, output_padding, bias): the DCGAN generators'
    // layers (1x1 -> 7x7, doublings) and odd cases.
    let cases = [
        (2, 100, 1, 1, 64, 7, 1, 0, 0, true),
        (2, 128, 7, 7, 64, 4, 2, 1, 0, true),
        (3, 64, 14, 14, 1, 4, 2, 1, 0, false),
        (2, 5, 4, 5, 3, 3, 2, 1, 1, true),
        (1, 4, 6, 3, 2, 2, 3, 0, 2, false),
    ];
    for (n, c, h, w, o, k, s, pad, opad, biased) in cases {
        let xv = random(&mut rng, n * c * h * w);
        let wv = random(&mut rng, c * o * k * k);
        let bv = random(&mut rng, o);
        let x_cpu: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let w_cpu = cpu.tensor_from_vec(wv.clone(), (c, o, k, k));
        let b_cpu = cpu.tensor_from_vec(bv.clone(), (o,));
        let bias = biased.then_some(&b_cpu);
        let y_cpu = conv_transpose2d(x_cpu.leaky_trace(), &w_cpu, bias, s, pad, opad).unwrap();
        let shape = *y_cpu.shape();
        let r = random(&mut rng, shape.num_elements());
        let r_cpu = cpu.tensor_from_vec(r.clone(), shape);
        let y_cpu_v = y_cpu.retaped::<NoneTape>().as_vec();
        let g_cpu = (y_cpu * r_cpu).sum::<(), _>().backward();

        let x_gpu: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(xv, (n, c, h, w));
        let w_gpu = gpu.tensor_from_vec(wv, (c, o, k, k));
        let b_gpu = gpu.tensor_from_vec(bv, (o,));
        let bias = biased.then_some(&b_gpu);
        let y_gpu = conv_transpose2d(x_gpu.leaky_trace(), &w_gpu, bias, s, pad, opad).unwrap();
        assert_eq!(*y_gpu.shape(), shape);
        let r_gpu = gpu.tensor_from_vec(r, shape);
        let y_gpu_v = y_gpu.retaped::<NoneTape>().as_vec();
        let g_gpu = (y_gpu * r_gpu).sum::<(), _>().backward();
        let what =
            format!("{label} {n}x{c}x{h}x{w} -> {o}, k{k} s{s} p{pad} op{opad}, bias {biased}");
        check(&format!("{what} output"), &y_gpu_v, &y_cpu_v);
        check_grad(&format!("{what} d/dx"), (&g_gpu, &x_gpu), (&g_cpu, &x_cpu));
        check_grad(&format!("{what} d/dw"), (&g_gpu, &w_gpu), (&g_cpu, &w_cpu));
        if biased {
            check_grad(&format!("{what} d/db"), (&g_gpu, &b_gpu), (&g_cpu, &b_cpu));
        }
    }
}

#[test]
fn batch_norm_training_and_inference_match_the_cpu_and_repeat_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    // DCGAN's feature maps (the last at batch 32: many values per feature), and (N, C) as 1x1
    // maps (the MLP generator's BatchNorm1d).
    for (n, c, h, w) in [
        (4, 16, 7, 7),
        (3, 8, 14, 14),
        (16, 32, 1, 1),
        (32, 64, 14, 14),
    ] {
        let xv: Vec<f32> = random(&mut rng, n * c * h * w)
            .into_iter()
            .map(|v| 3.0 * v + 0.5)
            .collect();
        let (gv, bv) = (random(&mut rng, c), random(&mut rng, c));
        let (mv, vv): (Vec<f32>, Vec<f32>) = (
            random(&mut rng, c),
            random(&mut rng, c).iter().map(|v| v + 1.5).collect(),
        );
        let r = random(&mut rng, n * c * h * w);
        let what = format!("batch norm {n}x{c}x{h}x{w}");
        let mut results = Vec::new();
        macro_rules! side {
            ($dev:expr, $D:ty) => {{
                let dev = $dev;
                let x: Nchw<f32, NoneTape, $D> = dev.tensor_from_vec(xv.clone(), (n, c, h, w));
                let g = dev.tensor_from_vec(gv.clone(), (c,));
                let b = dev.tensor_from_vec(bv.clone(), (c,));
                let mut rm = dev.tensor_from_vec(mv.clone(), (c,));
                let mut rv = dev.tensor_from_vec(vv.clone(), (c,));
                let y =
                    batch_norm_nchw(x.leaky_trace(), &g, &b, Some((&mut rm, &mut rv)), 1e-5, 0.1)
                        .unwrap();
                let rt = dev.tensor_from_vec(r.clone(), (n, c, h, w));
                let yv = y.retaped::<NoneTape>().as_vec();
                let grads = (y * rt.clone()).sum::<(), _>().backward();
                let e = batch_norm_nchw_eval(x.leaky_trace(), &g, &b, &rm, &rv, 1e-5).unwrap();
                let ev = e.retaped::<NoneTape>().as_vec();
                let egrads = (e * rt).sum::<(), _>().backward();
                results.push(vec![
                    yv,
                    grads.get(&x).as_vec(),
                    grads.get(&g).as_vec(),
                    grads.get(&b).as_vec(),
                    rm.as_vec(),
                    rv.as_vec(),
                    ev,
                    egrads.get(&x).as_vec(),
                ]);
            }};
        }
        side!(&cpu, Cpu);
        side!(&gpu, Cuda);
        side!(&gpu, Cuda);
        let names = [
            "output",
            "d/dx",
            "d/dgamma",
            "d/dbeta",
            "running mean",
            "running var",
            "inference output",
            "inference d/dx",
        ];
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (k, name) in names.iter().enumerate() {
            check(&format!("{what} {name}"), &results[1][k], &results[0][k]);
            assert_eq!(
                bits(&results[1][k]),
                bits(&results[2][k]),
                "{what} {name} repeats"
            );
        }
    }
}

/// `--tf32`: the GEMM path's products drop to a 10-bit mantissa, so the result moves away
/// from the FP32 one but stays within TF32's precision of the CPU.
#[test]
fn tf32_gemms_change_the_rounding_only() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (n, c, h, w, o) = (2, 64, 14, 14, 128);
    let xv = random(&mut rng, n * c * h * w);
    let wv = random(&mut rng, o * c * 9);
    let run = |tf32: bool| {
        mouton_models::layers::set_tf32_gemms(tf32);
        let x: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(xv.clone(), (n, c, h, w));
        let wt = gpu.tensor_from_vec(wv.clone(), (o, c, 3, 3));
        let y = conv2d(
            x,
            &wt,
            None::<&Tensor<(usize,), f32, Cuda>>,
            1,
            Padding::Same,
        );
        mouton_models::layers::set_tf32_gemms(false);
        y.unwrap().as_vec()
    };
    let x: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
    let wt = cpu.tensor_from_vec(wv.clone(), (o, c, 3, 3));
    let want = conv2d(
        x,
        &wt,
        None::<&Tensor<(usize,), f32, Cpu>>,
        1,
        Padding::Same,
    )
    .unwrap()
    .as_vec();
    let (fp32, tf32) = (run(false), run(true));
    let (e32, e_tf) = (rel(&fp32, &want), rel(&tf32, &want));
    println!("conv2d 64 -> 128 3x3: relative error FP32 {e32:.2e}, TF32 {e_tf:.2e}");
    assert!(e32 <= TOL, "FP32 {e32}");
    assert!(
        e_tf > e32,
        "TF32 did not change the GEMMs ({e_tf} vs {e32})"
    );
    assert!(e_tf <= 1e-2, "TF32 {e_tf}");
}

#[test]
fn activations_upsampling_products_and_slopes_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let shape = (3usize, 4usize, 5usize, 6usize);
    let xv = random(&mut rng, shape.num_elements());
    let acts = [
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    for act in acts {
        let x_cpu = cpu.tensor_from_vec(xv.clone(), shape);
        let x_gpu = gpu.tensor_from_vec(xv.clone(), shape);
        let y_cpu = activation(x_cpu.leaky_trace(), act);
        let y_gpu = activation(x_gpu.leaky_trace(), act);
        check(
            &format!("{act:?} output"),
            &y_gpu.retaped::<NoneTape>().as_vec(),
            &y_cpu.retaped::<NoneTape>().as_vec(),
        );
        let g_cpu = (y_cpu * 1.5).sum::<(), _>().backward();
        let g_gpu = (y_gpu * 1.5).sum::<(), _>().backward();
        check_grad(&format!("{act:?} d/dx"), (&g_gpu, &x_gpu), (&g_cpu, &x_cpu));
    }
    let x_cpu = cpu.tensor_from_vec(xv.clone(), shape);
    let x_gpu = gpu.tensor_from_vec(xv.clone(), shape);
    let up_cpu = upsample_nearest(x_cpu.leaky_trace(), 2);
    let up_gpu = upsample_nearest(x_gpu.leaky_trace(), 2);
    check(
        "upsample x2 output",
        &up_gpu.retaped::<NoneTape>().as_vec(),
        &up_cpu.retaped::<NoneTape>().as_vec(),
    );
    let r = random(&mut rng, up_cpu.shape().num_elements());
    let us = *up_cpu.shape();
    let g_cpu = (up_cpu * cpu.tensor_from_vec(r.clone(), us))
        .sum::<(), _>()
        .backward();
    let g_gpu = (up_gpu * gpu.tensor_from_vec(r, us))
        .sum::<(), _>()
        .backward();
    check_grad("upsample x2 d/dx", (&g_gpu, &x_gpu), (&g_cpu, &x_cpu));
    let cv = random(&mut rng, shape.num_elements());
    let m_cpu = mul_constant(x_cpu.leaky_trace(), &cpu.tensor_from_vec(cv.clone(), shape)).unwrap();
    let m_gpu = mul_constant(x_gpu.leaky_trace(), &gpu.tensor_from_vec(cv, shape)).unwrap();
    check(
        "mul_constant output",
        &m_gpu.retaped::<NoneTape>().as_vec(),
        &m_cpu.retaped::<NoneTape>().as_vec(),
    );
    let g_cpu = m_cpu.sum::<(), _>().backward();
    let g_gpu = m_gpu.sum::<(), _>().backward();
    check_grad("mul_constant d/dx", (&g_gpu, &x_gpu), (&g_cpu, &x_cpu));
    let s_cpu = activation_slopes(&x_cpu, Activation::LeakyRelu(0.2)).unwrap();
    let s_gpu = activation_slopes(&x_gpu, Activation::LeakyRelu(0.2)).unwrap();
    check("LeakyReLU slopes", &s_gpu.as_vec(), &s_cpu.as_vec());
}

#[test]
fn sheep1_networks_and_the_tangent_pass_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::seed_from_u64(3);
    let g_cpu = Sheep1Generator::<f32, Cpu>::build(&cpu);
    let d_cpu = Sheep1Discriminator::<f32, Cpu>::build(&cpu);
    let g_gpu = g_cpu.to_device(&gpu);
    let d_gpu = d_cpu.to_device(&gpu);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let n = 8;
    let z = random(&mut rng, n * 128);
    let img_cpu = g_cpu
        .forward(
            cpu.tensor_from_vec(z.clone(), (n, Const::<128>))
                .leaky_trace(),
        )
        .unwrap();
    let img_gpu = g_gpu
        .forward(gpu.tensor_from_vec(z, (n, Const::<128>)).leaky_trace())
        .unwrap();
    check(
        "sheep1-g images",
        &img_gpu.retaped::<NoneTape>().as_vec(),
        &img_cpu.retaped::<NoneTape>().as_vec(),
    );
    let s_cpu = d_cpu.score(img_cpu, None).unwrap();
    let s_gpu = d_gpu.score(img_gpu, None).unwrap();
    check(
        "sheep1-d(sheep1-g) scores",
        &s_gpu.retaped::<NoneTape>().as_vec(),
        &s_cpu.retaped::<NoneTape>().as_vec(),
    );
    let gr_cpu = s_cpu.sum::<(), _>().backward();
    let gr_gpu = s_gpu.sum::<(), _>().backward();
    check_grad(
        "d/d(sheep1-g conv2 weights)",
        (&gr_gpu, &g_gpu.conv2.weight),
        (&gr_cpu, &g_cpu.conv2.weight),
    );
    check_grad(
        "d/d(sheep1-g dense weights)",
        (&gr_gpu, &g_gpu.dense.weight),
        (&gr_cpu, &g_cpu.dense.weight),
    );
    check_grad(
        "d/d(sheep1-d conv1 weights)",
        (&gr_gpu, &d_gpu.conv1.weight),
        (&gr_cpu, &d_cpu.conv1.weight),
    );
    // The tangent pass at random images along random directions.
    let xv = random(&mut rng, n * 784);
    let uv = random(&mut rng, n * 784);
    let (_, rec_cpu) = d_cpu
        .score_recorded(cpu.tensor_from_vec(xv.clone(), (n, 1, 28, 28)), None)
        .unwrap();
    let (_, rec_gpu) = d_gpu
        .score_recorded(gpu.tensor_from_vec(xv, (n, 1, 28, 28)), None)
        .unwrap();
    let t_cpu = d_cpu
        .tangent(cpu.tensor_from_vec(uv.clone(), (n, 1, 28, 28)), &rec_cpu)
        .unwrap();
    let t_gpu = d_gpu
        .tangent(gpu.tensor_from_vec(uv, (n, 1, 28, 28)), &rec_gpu)
        .unwrap();
    check(
        "sheep2-critic tangent J(x)u",
        &t_gpu.as_vec(),
        &t_cpu.as_vec(),
    );
}

/// The CPU optimizer's Adam arithmetic (mouton-train's `Optimizer`, PyTorch's order), in f32.
fn host_adam(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], rule: Rule) {
    let Rule::Adam {
        b1,
        one_b1,
        b2,
        one_b2,
        step,
        bc2_sqrt,
        eps,
    } = rule
    else {
        unreachable!()
    };
    for i in 0..p.len() {
        m[i] = m[i] * b1 + g[i] * one_b1;
        v[i] = v[i] * b2 + g[i] * g[i] * one_b2;
        let denom = v[i].sqrt() / bc2_sqrt + eps;
        p[i] -= step * m[i] / denom;
    }
}

fn adam_rule(t: i32) -> Rule {
    let (lr, b1, b2, eps) = (2e-3f32, 0.5f32, 0.999f32, 1e-7f32);
    Rule::Adam {
        b1,
        one_b1: 1.0 - b1,
        b2,
        one_b2: 1.0 - b2,
        step: lr / (1.0 - b1.powi(t)),
        bc2_sqrt: (1.0 - b2.powi(t)).sqrt(),
        eps,
    }
}

#[test]
fn fused_updates_compute_the_cpu_optimizers_bits_and_the_layers_read_their_mirrors() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Conv weights of 9,000 values (several blocks of the kernel) and a bias of 5.
    let (o, c, k) = (5usize, 200usize, 3usize);
    let w0 = random(&mut rng, o * c * k * k);
    let b0 = random(&mut rng, o);
    let mut w: Tensor<(usize, usize, usize, usize), f32, Cuda> =
        gpu.tensor_from_vec(w0.clone(), (o, c, k, k));
    let mut b: Tensor<(usize,), f32, Cuda> = gpu.tensor_from_vec(b0.clone(), (o,));
    let x0 = random(&mut rng, 2 * c * 6 * 6);
    let x: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(x0.clone(), (2, c, 6, 6));
    let mut host = [
        (w0, vec![0.0; o * c * k * k], vec![0.0; o * c * k * k]),
        (b0, vec![0.0; o], vec![0.0; o]),
    ];
    let mut opt = FusedOptimizer::new(true);
    for t in 1..=3 {
        let gw = random(&mut rng, o * c * k * k);
        let gb = random(&mut rng, o);
        let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
        let gws: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w).unwrap();
        gws.device().htod_sync_copy_into(&gw, gws).unwrap();
        let gbs: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&b).unwrap();
        gbs.device().htod_sync_copy_into(&gb, gbs).unwrap();
        opt.update(0, &mut w, &mut grads, adam_rule(t), None)
            .unwrap();
        opt.update(1, &mut b, &mut grads, adam_rule(t), None)
            .unwrap();
        let norm_sq = opt.finish().unwrap().unwrap().as_vec()[0];
        for ((p, m, v), g) in host.iter_mut().zip([&gw, &gb]) {
            host_adam(p, m, v, g, adam_rule(t));
        }
        let want: f64 = gw.iter().chain(&gb).map(|&g| (g as f64) * (g as f64)).sum();
        assert!(
            ((norm_sq as f64) - want).abs() <= 1e-5 * want,
            "{norm_sq} vs {want}"
        );
        // Bit for bit: parameters (as dfdx holds them) and moments.
        assert_eq!(w.as_vec(), host[0].0, "weights after update {t}");
        assert_eq!(b.as_vec(), host[1].0, "bias after update {t}");
        let (m, v) = opt.moments(0).unwrap().unwrap();
        assert_eq!(
            (m, v),
            (host[0].1.clone(), host[0].2.clone()),
            "moments after {t}"
        );
    }
    // The layers read the mirrors: the same output as from fresh tensors of the same values,
    // and as after forgetting the mirrors (read through dfdx).
    let conv = |w: &Tensor<(usize, usize, usize, usize), f32, Cuda>,
                b: &Tensor<(usize,), f32, Cuda>| {
        conv2d(x.clone(), w, Some(b), 1, Padding::Same)
            .unwrap()
            .as_vec()
    };
    let fresh_w = gpu.tensor_from_vec(w.as_vec(), (o, c, k, k));
    let fresh_b = gpu.tensor_from_vec(b.as_vec(), (o,));
    let want = conv(&fresh_w, &fresh_b);
    assert_eq!(conv(&w, &b), want, "through the mirrors");
    // A forward pass holds the mirror; an update before its backward pass must not change
    // what that backward pass reads (the mirror is copied, not written under it).
    let xt = x.clone().traced(Gradients::leaky());
    let y = conv2d(xt, &w, Some(&b), 1, Padding::Same).unwrap();
    let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
    let gws: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w).unwrap();
    let big = vec![1.0f32; o * c * k * k];
    gws.device().htod_sync_copy_into(&big, gws).unwrap();
    opt.update(0, &mut w, &mut grads, adam_rule(4), None)
        .unwrap();
    opt.update(1, &mut b, &mut grads, adam_rule(4), None)
        .unwrap();
    opt.finish().unwrap();
    assert_ne!(w.as_vec(), fresh_w.as_vec(), "the update moved the weights");
    let gx = y.sum().backward();
    let want_gx = {
        let xt = x.clone().traced(Gradients::leaky());
        let y = conv2d(xt, &fresh_w, Some(&fresh_b), 1, Padding::Same).unwrap();
        y.sum().backward().get(&x).as_vec()
    };
    assert_eq!(
        gx.get(&x).as_vec(),
        want_gx,
        "backward with the weights of its forward"
    );
    // After forgetting: read through dfdx, same values as the mirrors gave.
    let through_mirrors = conv(&w, &b);
    opt.forget_mirrors();
    assert_eq!(conv(&w, &b), through_mirrors, "after forget_mirrors");
    // A non-finite gradient gives a NaN norm.
    let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
    let gbs: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&b).unwrap();
    let mut bad = vec![0.5f32; o];
    bad[2] = f32::INFINITY;
    gbs.device().htod_sync_copy_into(&bad, gbs).unwrap();
    opt.update(0, &mut w, &mut grads, adam_rule(5), None)
        .unwrap();
    opt.update(1, &mut b, &mut grads, adam_rule(5), None)
        .unwrap();
    assert!(opt.finish().unwrap().unwrap().as_vec()[0].is_nan());
    println!("fused Adam: 3 updates bit-identical to the CPU arithmetic; mirrors read by conv2d");
}

#[test]
fn fused_rmsprop_computes_the_cpu_optimizers_bits() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let n = 70_001;
    let mut p_host = random(&mut rng, n);
    let mut p: Tensor<(usize,), f32, Cuda> = gpu.tensor_from_vec(p_host.clone(), (n,));
    let mut v_host = vec![0.0f32; n];
    let (lr, alpha, eps) = (5e-5f32, 0.99f32, 1e-8f32);
    let rule = Rule::RmsProp {
        alpha,
        one_alpha: 1.0 - alpha,
        lr,
        eps,
    };
    let mut opt = FusedOptimizer::new(false);
    for _ in 0..3 {
        let g = random(&mut rng, n);
        let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
        let gs: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&p).unwrap();
        gs.device().htod_sync_copy_into(&g, gs).unwrap();
        opt.update(0, &mut p, &mut grads, rule, None).unwrap();
        opt.finish().unwrap();
        for i in 0..n {
            v_host[i] = v_host[i] * alpha + g[i] * g[i] * (1.0 - alpha);
            p_host[i] -= lr * g[i] / (v_host[i].sqrt() + eps);
        }
        assert_eq!(p.as_vec(), p_host);
        assert_eq!(
            opt.moments(0).unwrap().unwrap(),
            (Vec::new(), v_host.clone())
        );
    }
}

/// Two fused convolution + activation layers with an upsampling between (the second and the
/// upsampling read the kept outputs of the layer before), forward and the gradients of the
/// input, weights and biases, against the CPU's separate convolutions and activations.
#[test]
fn fused_convolution_activations_and_kept_outputs_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = Cpu::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Sigmoid,
        Activation::Tanh,
        // Not fused (the derivative cannot be told from the output): conv, then dfdx's op.
        Activation::LeakyRelu(-0.1),
    ];
    // (c, o1, o2): a GEMM then a direct layer, two GEMM layers.
    for (c, o1, o2) in [(3usize, 16usize, 1usize), (4, 12, 10)] {
        for (i, act) in acts.into_iter().enumerate() {
            let (n, h, w, k) = (3usize, 7usize, 6usize, 3usize);
            let biased = i % 2 == 0;
            let xv = random(&mut rng, n * c * h * w);
            let w1 = random(&mut rng, o1 * c * k * k);
            let b1 = random(&mut rng, o1);
            let w2 = random(&mut rng, o2 * o1 * k * k);
            let b2 = random(&mut rng, o2);
            let out = (n, o2, 2 * h, 2 * w);
            let r = random(&mut rng, out.0 * out.1 * out.2 * out.3);
            // CPU: separate convolutions and activations.
            let x_c: Nchw<f32, NoneTape, Cpu> = cpu.tensor_from_vec(xv.clone(), (n, c, h, w));
            let (w1_c, b1_c) = (
                cpu.tensor_from_vec(w1.clone(), (o1, c, k, k)),
                cpu.tensor_from_vec(b1.clone(), (o1,)),
            );
            let (w2_c, b2_c) = (
                cpu.tensor_from_vec(w2.clone(), (o2, o1, k, k)),
                cpu.tensor_from_vec(b2.clone(), (o2,)),
            );
            let y = conv2d(
                x_c.leaky_trace(),
                &w1_c,
                biased.then_some(&b1_c),
                1,
                Padding::Same,
            )
            .unwrap();
            let y = upsample_nearest(activation(y, act), 2);
            let y = conv2d(y, &w2_c, biased.then_some(&b2_c), 1, Padding::Same).unwrap();
            let y = activation(y, act);
            let y_cpu = y.retaped::<NoneTape>().as_vec();
            let g_cpu = (y * cpu.tensor_from_vec(r.clone(), out))
                .sum::<(), _>()
                .backward();
            // CUDA: fused.
            let x_g: Nchw<f32, NoneTape, Cuda> = gpu.tensor_from_vec(xv, (n, c, h, w));
            let (w1_g, b1_g) = (
                gpu.tensor_from_vec(w1, (o1, c, k, k)),
                gpu.tensor_from_vec(b1, (o1,)),
            );
            let (w2_g, b2_g) = (
                gpu.tensor_from_vec(w2, (o2, o1, k, k)),
                gpu.tensor_from_vec(b2, (o2,)),
            );
            let bias = |b| biased.then_some(b);
            let y =
                conv2d_act(x_g.leaky_trace(), &w1_g, bias(&b1_g), 1, Padding::Same, act).unwrap();
            let y = upsample_nearest(y, 2);
            let y = conv2d_act(y, &w2_g, bias(&b2_g), 1, Padding::Same, act).unwrap();
            let y_gpu = y.retaped::<NoneTape>().as_vec();
            let g_gpu = (y * gpu.tensor_from_vec(r, out)).sum::<(), _>().backward();
            let what = format!("conv {c}->{o1}->{o2} {act:?} bias {biased}");
            check(&format!("{what} output"), &y_gpu, &y_cpu);
            check_grad(&format!("{what} d/dx"), (&g_gpu, &x_g), (&g_cpu, &x_c));
            check_grad(&format!("{what} d/dw1"), (&g_gpu, &w1_g), (&g_cpu, &w1_c));
            check_grad(&format!("{what} d/dw2"), (&g_gpu, &w2_g), (&g_cpu, &w2_c));
            if biased {
                check_grad(&format!("{what} d/db1"), (&g_gpu, &b1_g), (&g_cpu, &b1_c));
            }
        }
    }
}
