//! The slides' point about the minimax generator loss: when D confidently rejects the fakes
//! (early in training, D(G(z)) -> 0), the saturating loss log(1 - D(G(z))) gives the generator
//! almost no gradient, while the non-saturating -log D(G(z)) gives it a strong one.
//!
//! Run: `cargo run -p mouton-losses --example vanishing_gradient`

use dfdx::prelude::*;
use mouton_losses::gan::{generator_non_saturating, generator_saturating};

fn main() {
    let dev = Cpu::default();
    println!(
        "{:>8} {:>10} {:>16} {:>20}",
        "logit", "D(G(z))", "d/dlogit sat.", "d/dlogit non-sat."
    );
    for step in 0..=16 {
        let l = -12.0 + step as f64;
        let x = dev.tensor_from_vec(vec![l], (1usize,));
        let gs = generator_saturating(x.leaky_trace())
            .backward()
            .get(&x)
            .as_vec()[0];
        let gn = generator_non_saturating(x.leaky_trace())
            .backward()
            .get(&x)
            .as_vec()[0];
        let d = 1.0 / (1.0 + (-l).exp());
        let bar = |g: f64| "#".repeat((g.abs() * 20.0).round() as usize);
        println!(
            "{l:>8.1} {d:>10.6} {gs:>9.6} {:<6} {gn:>9.6} {}",
            bar(gs),
            bar(gn)
        );
    }
    println!("\nWhere D rejects the fakes (left), the saturating gradient vanishes;");
    println!("the non-saturating one stays near -1, so G still learns.");
}
