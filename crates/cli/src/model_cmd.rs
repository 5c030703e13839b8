//! `mouton model`: glue over mouton-models.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use dfdx::prelude::Cpu;
use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator};
use mouton_train::config::VAE_LATENT_DIMS;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Prints an architecture's layers, output shapes and parameter counts.
    Summary {
        /// The architecture.
        #[arg(value_enum)]
        arch: Arch,
        /// Image side: 28, or 32 / 64 for dcgan-g and dcgan-d.
        #[arg(long, default_value_t = 28)]
        size: usize,
        /// The VAE's latent dimensions: 2, 4, 8 or 16.
        #[arg(long, value_name = "N")]
        latent_dim: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Arch {
    /// FIDLE SHEEP1 generator.
    #[value(name = "sheep1-g")]
    Sheep1G,
    /// FIDLE SHEEP1 discriminator.
    #[value(name = "sheep1-d")]
    Sheep1D,
    /// FIDLE SHEEP2 WGAN-GP critic (SHEEP1's discriminator read as a critic).
    #[value(name = "sheep2-critic")]
    Sheep2Critic,
    /// FIDLE's fully connected generator (Generator_1).
    #[value(name = "mlp-g")]
    MlpG,
    /// FIDLE's fully connected discriminator (Discriminator_1).
    #[value(name = "mlp-d")]
    MlpD,
    /// A small convolutional VAE (latent 2, or --latent-dim).
    Vae,
    /// DCGAN generator (pytorch/examples style; 28, 32 or 64 px with --size).
    #[value(name = "dcgan-g")]
    DcganG,
    /// DCGAN discriminator.
    #[value(name = "dcgan-d")]
    DcganD,
}

pub fn run(cmd: &ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Summary {
            arch,
            size,
            latent_dim,
        } => {
            use mouton_models::dcgan::*;
            if let Some(l) = latent_dim {
                if !matches!(arch, Arch::Vae) {
                    return Err(crate::BadInput(
                        "--latent-dim sets the VAE's latent size; the GAN generators' are fixed"
                            .into(),
                    )
                    .into());
                }
                if !VAE_LATENT_DIMS.contains(l) {
                    return Err(crate::BadInput(format!(
                        "--latent-dim {l}: the VAE trains with 2, 4, 8 or 16 latent dimensions"
                    ))
                    .into());
                }
            }
            let s = match (arch, *size) {
                (Arch::Vae, 28) => mouton_models::vae::summary(latent_dim.unwrap_or(2)),
                (Arch::DcganG, 32) => DcganGenerator32::<f32, Cpu>::summary(),
                (Arch::DcganG, 64) => DcganGenerator64::<f32, Cpu>::summary(),
                (Arch::DcganD, 32) => DcganDiscriminator32::<f32, Cpu>::summary(),
                (Arch::DcganD, 64) => DcganDiscriminator64::<f32, Cpu>::summary(),
                (_, 28) => summary28(*arch),
                (Arch::DcganG | Arch::DcganD, _) => {
                    return Err(crate::BadInput(format!(
                        "--size {size}: dcgan-g and dcgan-d come in 28, 32 and 64 px"
                    ))
                    .into())
                }
                _ => {
                    return Err(crate::BadInput(format!(
                        "--size {size}: this architecture takes 28x28 images only"
                    ))
                    .into())
                }
            };
            crate::console::write_out(format_args!("{s}"))?;
        }
    }
    Ok(())
}

fn summary28(arch: Arch) -> mouton_models::summary::ModelSummary {
    match arch {
        Arch::Sheep1G => Sheep1Generator::<f32, Cpu>::summary(),
        Arch::Sheep1D => Sheep1Discriminator::<f32, Cpu>::summary(),
        Arch::DcganG => mouton_models::dcgan::DcganGenerator::<f32, Cpu>::summary(),
        Arch::DcganD => mouton_models::dcgan::DcganDiscriminator::<f32, Cpu>::summary(),
        Arch::Vae => mouton_models::vae::summary(2),
        Arch::MlpG => mouton_models::mlp::MlpGenerator::<f32, Cpu>::summary(),
        Arch::MlpD => mouton_models::mlp::MlpDiscriminator::<f32, Cpu>::summary(),
        Arch::Sheep2Critic => Sheep1Discriminator::<f32, Cpu>::summary_as("sheep2-critic", "score"),
    }
}
