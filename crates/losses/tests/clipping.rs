//! WGAN weight clipping works in place: the clipped critic still trains with dfdx's optimizer.

use dfdx::optim::{Optimizer, RMSprop, RMSpropConfig};
use dfdx::prelude::*;
use mouton_losses::wasserstein::{clip_weights, critic_loss};
use mouton_models::critic::Critic;
use mouton_models::sheep::Sheep2Critic;

#[test]
fn clipped_critic_keeps_its_parameter_ids_and_trains() {
    let dev = Cpu::seed_from_u64(4);
    let mut d = Sheep2Critic::<f32, Cpu>::build(&dev);
    let mut opt = RMSprop::new(
        &d,
        RMSpropConfig {
            lr: 5e-5,
            ..Default::default()
        },
    );
    let real: Tensor<(usize, usize, usize, usize), f32, Cpu> =
        dev.sample_uniform_like(&(4, 1, 28, 28));
    let fake: Tensor<(usize, usize, usize, usize), f32, Cpu> =
        dev.sample_uniform_like(&(4, 1, 28, 28));
    for _ in 0..2 {
        clip_weights(&mut d, 0.01).unwrap();
        assert!(d.conv2.weight.as_vec().iter().all(|v| v.abs() <= 0.01));
        let (s_real, tape) = d
            .score(real.clone().traced(d.alloc_grads()), None)
            .unwrap()
            .split_tape();
        let s_fake = d.score(fake.clone().put_tape(tape), None).unwrap();
        let grads = critic_loss(s_real, s_fake).backward();
        opt.update(&mut d, &grads)
            .expect("after clipping, every parameter still has its gradient");
    }
    assert!(clip_weights(&mut d, 0.0).is_err());
    assert!(clip_weights(&mut d, f64::NAN).is_err());
}
