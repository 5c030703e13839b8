//! `mouton emd`: glue over mouton-emd's delta recurrence and 1-D Wasserstein distance.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mouton_emd::{delta_emd_trace, wasserstein_1d, EmdError, MassPolicy};

use crate::input::{parse_list, read_numbers};
use crate::BadInput;

/// Either two histograms (`--p`, `--q`) on a grid, or two samples from files (`--u-file`,
/// `--v-file`).
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["p", "u_file"]))]
pub struct EmdArgs {
    /// First histogram, comma-separated masses (e.g. 3,2,1,4).
    #[arg(
        long = "p",
        requires = "q",
        allow_hyphen_values = true,
        value_name = "LIST"
    )]
    p: Option<String>,
    /// Second histogram, same length as --p.
    #[arg(
        long = "q",
        requires = "p",
        allow_hyphen_values = true,
        value_name = "LIST"
    )]
    q: Option<String>,
    /// Strictly increasing bin positions (default 0, 1, 2, ...).
    #[arg(long, requires = "p", allow_hyphen_values = true, value_name = "LIST")]
    positions: Option<String>,
    /// Print the table of i, P_i, Q_i and delta_i before the distance.
    #[arg(long, requires = "p")]
    trace: bool,
    /// Compare shapes only: divide each histogram by its total first.
    #[arg(long, requires = "p")]
    normalize: bool,
    /// File of whitespace-separated sample values (first distribution).
    #[arg(long, requires = "v_file", conflicts_with = "p", value_name = "FILE")]
    u_file: Option<PathBuf>,
    /// File of sample values (second distribution).
    #[arg(long, requires = "u_file", conflicts_with = "p", value_name = "FILE")]
    v_file: Option<PathBuf>,
    /// Order p >= 1 of the Wasserstein distance W_p.
    #[arg(long, default_value_t = 1.0, requires = "u_file", value_name = "P")]
    order: f64,
    /// Weights of the --u-file samples, one per value (default uniform).
    #[arg(long, requires = "u_file", value_name = "FILE")]
    u_weights: Option<PathBuf>,
    /// Weights of the --v-file samples (default uniform).
    #[arg(long, requires = "u_file", value_name = "FILE")]
    v_weights: Option<PathBuf>,
}

pub fn run(args: &EmdArgs) -> Result<()> {
    if let (Some(p), Some(q)) = (&args.p, &args.q) {
        let p = parse_list("--p", p)?;
        let q = parse_list("--q", q)?;
        let x = args
            .positions
            .as_deref()
            .map(|s| parse_list("--positions", s))
            .transpose()?;
        let policy = if args.normalize {
            MassPolicy::Normalize
        } else {
            MassPolicy::Strict
        };
        let t = delta_emd_trace(&p, &q, x.as_deref(), policy).map_err(bad)?;
        if args.trace {
            out!(
                "{:>4}  {:>12}  {:>12}  {:>12}",
                "i",
                "P_i",
                "Q_i",
                "delta_i"
            )?;
            for (i, d) in t.delta.iter().enumerate() {
                out!("{:>4}  {:>12}  {:>12}  {:>12}", i + 1, p[i], q[i], d)?;
            }
        }
        out!("W = {}", t.distance)?;
        return Ok(());
    }
    if let (Some(uf), Some(vf)) = (&args.u_file, &args.v_file) {
        // Checked here too so that the message names the flag, not the library's parameter.
        if !(args.order.is_finite() && args.order >= 1.0) {
            return Err(BadInput(format!(
                "--order {}: the order of a Wasserstein distance must be a finite number >= 1",
                args.order
            ))
            .into());
        }
        let u = read_numbers(uf)?;
        let v = read_numbers(vf)?;
        let uw = args.u_weights.as_deref().map(read_numbers).transpose()?;
        let vw = args.v_weights.as_deref().map(read_numbers).transpose()?;
        let w = wasserstein_1d(
            &u.values,
            &v.values,
            uw.as_ref().map(|n| n.values.as_slice()),
            vw.as_ref().map(|n| n.values.as_slice()),
            args.order,
        )
        .map_err(|e| {
            // Point at the file and line of the offending number where the error has one.
            let files = [
                ("u", Some((uf.as_path(), &u))),
                ("v", Some((vf.as_path(), &v))),
                ("u_weights", args.u_weights.as_deref().zip(uw.as_ref())),
                ("v_weights", args.v_weights.as_deref().zip(vw.as_ref())),
            ];
            let at = match &e {
                EmdError::NegativeMass { name, index, .. }
                | EmdError::NonFinite { name, index, .. } => {
                    files.iter().find(|(n, _)| n == name).and_then(|(_, f)| {
                        f.map(|(path, nums)| format!("{}:{}: ", path.display(), nums.lines[*index]))
                    })
                }
                _ => None,
            };
            BadInput(format!("{}invalid input: {e}", at.unwrap_or_default()))
        })?;
        out!("W = {w}")?;
        return Ok(());
    }
    Err(BadInput("give either --p and --q, or --u-file and --v-file".into()).into())
}

fn bad(e: EmdError) -> BadInput {
    match e {
        // The library's hint names its API; here the flag is what the user can change.
        EmdError::UnequalMass {
            left_total,
            right_total,
            ..
        } => BadInput(format!(
            "invalid input: unequal total mass: --p sums to {left_total} but --q sums to \
             {right_total} (pass --normalize to compare shapes only)"
        )),
        e => BadInput(format!("invalid input: {e}")),
    }
}
