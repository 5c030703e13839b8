//! Which of a VAE run's 16 hidden encoder units (the ReLU layer both latent heads read) are
//! ever non-zero on given images: a latent head can only vary along the directions those
//! units span, whatever the latent size (see BENCHMARKS.md, "A VAE's latent size").
//!
//! `cargo run --release -p mouton-train --example vae_hidden_units -- RUN IMAGES [FORMAT]`

use dfdx::prelude::*;
use mouton_models::vae::Vae;
use mouton_train::checkpoint::{load_generator, Pick, Weights};
use mouton_train::config::TrainConfig;
use mouton_train::TrainError;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, images, rest @ ..] = &args[..] else {
        return Err("usage: vae_hidden_units RUN IMAGES [FORMAT]".into());
    };
    let run = std::path::Path::new(run);
    let cfg = TrainConfig::load(&run.join("config.toml"))?;
    let data = mouton_train::data::load_file(
        std::path::Path::new(images),
        rest.first().map(|s| s.as_str()),
        28,
    )?;
    let pixels = data.as_slice();
    let n = pixels.len() / 784;
    let counts = mouton_train::with_vae_latent!(cfg.vae_latent(), L => {
        let mut vae: Vae<L, f32, Cpu> = mouton_train::trainer::build(&cfg, 0);
        let loaded = load_generator(run, Pick::Newest, Weights::Trained, &mut vae)?;
        println!("{}: step {}, latent {L}, {n} images", run.display(), loaded.step);
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(pixels.to_vec(), (n, 1usize, 28usize, 28usize));
        let h = vae.hidden(x)?.as_vec();
        let mut counts = [0usize; 16];
        for row in h.chunks(16) {
            for (c, &v) in counts.iter_mut().zip(row) {
                *c += usize::from(v > 0.0);
            }
        }
        Ok::<_, TrainError>(counts)
    })?;
    let alive = counts.iter().filter(|&&c| c > 0).count();
    println!("hidden units non-zero on at least one image: {alive} of 16");
    println!("images on which each unit is non-zero: {counts:?}");
    Ok(())
}
