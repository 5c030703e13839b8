//! `mouton data`: glue over mouton-data (inspect, look at, rasterize and simplify Quick, Draw!
//! files).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use mouton_data::{
    detect_format, file_info, load_images, rasterize_to_npy, tile, write_atomically,
    write_png_gray, write_simplified_line, DataError, Filter, Format, NdjsonKind, NdjsonReader,
    RasterOptions, Simplifier, Strokes,
};

use crate::output::{cannot_write, check_output};
use crate::BadInput;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Counts, recognized share, countries, strokes and points statistics of a file.
    Info {
        /// Input file (ndjson, Google .bin, .npy; gzip accepted).
        file: PathBuf,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Renders the first drawings of a file into a grid PNG ("load the dataset and look").
    Show {
        /// Input file.
        file: PathBuf,
        /// Output PNG.
        #[arg(short, long)]
        output: PathBuf,
        /// Grid as COLSxROWS.
        #[arg(long, default_value = "5x5", value_parser = parse_grid)]
        grid: (usize, usize),
        /// Side of each image in pixels.
        #[arg(long, default_value_t = 28)]
        size: u32,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Renders a file Google's way into a uint8 .npy of shape (N, size*size).
    Rasterize {
        /// Input file.
        file: PathBuf,
        /// Output .npy (written atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Side of each image in pixels.
        #[arg(long, default_value_t = 28)]
        size: u32,
        #[command(flatten)]
        format: FormatArg,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Writes synthetic sheep (a seeded procedural stand-in for the real drawings) as
    /// simplified ndjson.
    Synth {
        /// How many sheep.
        #[arg(short = 'n', long, default_value_t = 1000)]
        count: usize,
        /// Output ndjson (written atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Seed: the same seed gives the same flock.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Downloads a category from Google's public bucket (resumable, atomic).
    Fetch {
        /// Category, e.g. sheep (see Google's categories.txt).
        category: String,
        /// Which file.
        #[arg(long, value_enum, default_value_t = FetchFormat::Simplified)]
        format: FetchFormat,
        /// Destination folder.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Base URL of the bucket (default Google's, or $MOUTON_QUICKDRAW_URL).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Simplifies raw ndjson drawings the way Google made its simplified files.
    Simplify {
        /// Raw ndjson input.
        file: PathBuf,
        /// Simplified ndjson output (written atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Count and report invalid lines instead of stopping at the first.
        #[arg(long)]
        skip_invalid: bool,
    },
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Input format; `bitmap28` (headerless 28x28 uint8 images) is never guessed, since its
    /// .bin extension collides with Google's binary format.
    #[arg(long, value_enum, default_value_t = FormatChoice::Auto)]
    format: FormatChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatChoice {
    Auto,
    Ndjson,
    Binary,
    Npy,
    Bitmap28,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FetchFormat {
    Simplified,
    Raw,
    Bitmap,
    Binary,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Keep only drawings the game recognized.
    #[arg(long)]
    recognized: bool,
    /// Keep only these country codes (repeatable).
    #[arg(long = "country", value_name = "CODE")]
    countries: Vec<String>,
    /// Keep only the first N drawings.
    #[arg(long, value_name = "N")]
    first: Option<usize>,
    /// Keep a random sample of N drawings (after the other filters; file order kept).
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Seed of --random.
    #[arg(long, default_value_t = 0, requires = "random")]
    seed: u64,
    /// Count and report invalid records instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
}

impl FilterArgs {
    fn filter(&self, first: Option<usize>) -> Filter {
        Filter {
            recognized_only: self.recognized,
            countries: self.countries.clone(),
            first: match (self.first, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            random: self.random.map(|n| (n, self.seed)),
        }
    }
}

fn parse_grid(s: &str) -> Result<(usize, usize), String> {
    let (c, r) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not COLSxROWS, e.g. 5x5"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=100).contains(&n))
    };
    match (n(c), n(r)) {
        (Some(c), Some(r)) => Ok((c, r)),
        _ => Err(format!("{s:?}: columns and rows must be 1..=100")),
    }
}

fn bad(e: DataError) -> BadInput {
    BadInput(e.to_string())
}

fn format_of(path: &Path, f: &FormatArg) -> Result<Format, BadInput> {
    Ok(match f.format {
        FormatChoice::Auto => detect_format(path).map_err(bad)?,
        FormatChoice::Ndjson => Format::Ndjson,
        FormatChoice::Binary => Format::Binary,
        FormatChoice::Npy => Format::Npy,
        FormatChoice::Bitmap28 => Format::Bitmap28,
    })
}

fn raster_options(size: u32) -> Result<RasterOptions, BadInput> {
    if !(1..=mouton_data::MAX_SIZE).contains(&size) {
        return Err(BadInput(format!(
            "--size {size}: must be 1..={}",
            mouton_data::MAX_SIZE
        )));
    }
    Ok(RasterOptions {
        size,
        ..RasterOptions::default()
    })
}

fn report_skipped(summary: &mouton_data::Summary) {
    if summary.skipped > 0 {
        note!(
            "skipped {} invalid record(s), for example:",
            summary.skipped
        );
        for e in &summary.skipped_examples {
            note!("  {e}");
        }
    }
}

pub fn run(cmd: &DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info { file, format } => {
            let fmt = format_of(file, format)?;
            let info = file_info(file, fmt).map_err(bad)?;
            crate::console::write_out(format_args!("{info}"))?;
        }
        DataCommand::Show {
            file,
            output,
            grid,
            size,
            format,
            filter,
        } => {
            let fmt = format_of(file, format)?;
            let opts = raster_options(*size)?;
            check_output(output, Some("png"))?;
            let cells = grid.0 * grid.1;
            let (images, summary) = load_images(
                file,
                fmt,
                &opts,
                &filter.filter(Some(cells)),
                filter.skip_invalid,
            )
            .map_err(bad)?;
            report_skipped(&summary);
            let list: Vec<&[u8]> = (0..images.len()).map(|k| images.image(k)).collect();
            let (w, h, px) = tile(&list, images.side, grid.0, grid.1, 2);
            write_png_gray(output, w, h, &px).map_err(cannot_write)?;
            out!(
                "wrote {} ({}x{} grid of {} drawings, {w}x{h} px)",
                output.display(),
                grid.0,
                grid.1,
                list.len()
            )?;
        }
        DataCommand::Rasterize {
            file,
            output,
            size,
            format,
            filter,
        } => {
            let fmt = format_of(file, format)?;
            let opts = raster_options(*size)?;
            check_output(output, Some("npy"))?;
            let filt = filter.filter(None);
            let (count, summary) =
                rasterize_to_npy(file, fmt, &opts, &filt, filter.skip_invalid, output).map_err(
                    |e| {
                        // Errors about the output file are failures to write, not bad input.
                        if e.file == *output {
                            cannot_write(e)
                        } else {
                            bad(e).into()
                        }
                    },
                )?;
            report_skipped(&summary);
            out!(
                "wrote {}: {} drawings at {size}x{size}{}{}",
                output.display(),
                count,
                if summary.simplified > 0 {
                    format!(" ({} raw drawings simplified first)", summary.simplified)
                } else {
                    String::new()
                },
                if summary.filtered > 0 {
                    format!(", {} left out by the filters", summary.filtered)
                } else {
                    String::new()
                }
            )?;
        }
        DataCommand::Synth {
            count,
            output,
            seed,
        } => {
            check_output(output, None)?;
            // A piece at a time, so that memory stays flat however many are asked for.
            write_atomically(output, |f| {
                for piece in mouton_data::synth_pieces(*count, *seed) {
                    for d in &piece {
                        write_simplified_line(f, d)?;
                    }
                }
                Ok(())
            })
            .map_err(cannot_write)?;
            out!(
                "wrote {}: {count} synthetic sheep (seed {seed})",
                output.display()
            )?;
            note!("{}", mouton_data::SYNTH_NOTICE);
        }
        DataCommand::Fetch {
            category,
            format,
            dir,
            base_url,
        } => fetch(category, *format, dir, base_url.as_deref())?,
        DataCommand::Simplify {
            file,
            output,
            skip_invalid,
        } => {
            check_output(output, None)?;
            // Read everything first so that bad input leaves no output at all.
            let mut simplifier = Simplifier::default();
            let mut out = Vec::new();
            let (mut n, mut skipped) = (0usize, Vec::new());
            let mut simple = Strokes::default();
            for item in NdjsonReader::open(file).map_err(bad)? {
                match item {
                    Ok((mut d, kind)) => {
                        if kind == NdjsonKind::Raw {
                            simplifier.simplify_into(&d.strokes, &mut simple);
                            std::mem::swap(&mut d.strokes, &mut simple);
                        }
                        write_simplified_line(&mut out, &d)?;
                        n += 1;
                    }
                    Err(e) if *skip_invalid => skipped.push(e.to_string()),
                    Err(e) => return Err(bad(e).into()),
                }
            }
            write_atomically(output, |f| std::io::Write::write_all(f, &out))
                .map_err(cannot_write)?;
            if !skipped.is_empty() {
                note!("skipped {} invalid line(s), for example:", skipped.len());
                for e in skipped.iter().take(5) {
                    note!("  {e}");
                }
            }
            out!("wrote {}: {n} simplified drawings", output.display())?;
        }
    }
    Ok(())
}

fn fetch(category: &str, format: FetchFormat, dir: &Path, base_url: Option<&str>) -> Result<()> {
    use mouton_data::RemoteFormat;
    let env = std::env::var(mouton_data::BASE_URL_ENV).ok();
    let base = base_url
        .or(env.as_deref())
        .unwrap_or(mouton_data::DEFAULT_BASE_URL);
    let format = match format {
        FetchFormat::Simplified => RemoteFormat::Simplified,
        FetchFormat::Raw => RemoteFormat::Raw,
        FetchFormat::Bitmap => RemoteFormat::Bitmap,
        FetchFormat::Binary => RemoteFormat::Binary,
    };
    // Drawn on a terminal only; otherwise the final line below is the log.
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .map_err(anyhow::Error::from)?
        .progress_chars("=> "),
    );
    bar.set_message(category.to_string());
    let res = mouton_data::fetch(base, category, format, dir, |done, total| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let got = match res {
        Ok(g) => g,
        Err(e) if e.message.contains("HTTP 404") || e.message == "not a category name" => {
            return Err(BadInput(e.to_string()).into())
        }
        Err(e) => return Err(e.into()),
    };
    if got.already_there {
        out!(
            "{} is already there ({} bytes); delete it to download again",
            got.path.display(),
            got.bytes
        )?;
    } else {
        out!(
            "downloaded {} ({} bytes{})",
            got.path.display(),
            got.bytes,
            if got.resumed_from > 0 {
                format!(", resumed after {} bytes", got.resumed_from)
            } else {
                String::new()
            }
        )?;
        out!("Quick, Draw! data: Google, CC BY 4.0 (credit \"Quick, Draw! dataset, Google (CC BY 4.0)\")")?;
    }
    Ok(())
}
