//! Keras-like model summaries: one row per layer with its output shape and parameter count.

use std::fmt;

/// One layer of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    /// Layer description, e.g. `Conv2d 4x4 s2 same`.
    pub layer: String,
    /// Output shape without the batch, e.g. `(64, 14, 14)`.
    pub output: String,
    /// Trainable parameters.
    pub params: usize,
}

/// A row of a summary table.
pub(crate) fn row(layer: &str, output: &str, params: usize) -> LayerRow {
    LayerRow {
        layer: layer.into(),
        output: output.into(),
        params,
    }
}

/// A model's layers, printable as a table ending with the total.
///
/// ```
/// let s = mouton_models::sheep::Sheep1Generator::<f32, dfdx::prelude::Cpu>::summary();
/// assert_eq!(s.total(), 779_969);
/// assert!(s.to_string().contains("Total params: 779,969"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// The model's name.
    pub name: String,
    /// Its layers in order.
    pub rows: Vec<LayerRow>,
}

impl ModelSummary {
    /// Sum of the layers' parameters.
    pub fn total(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
}

/// Parameters of a convolution (weights and bias).
///
/// ```
/// // SHEEP2's second critic layer: 64 -> 128 channels, 4x4 kernels.
/// assert_eq!(mouton_models::summary::conv_params(64, 128, 4), 131_200);
/// ```
pub fn conv_params(inp: usize, out: usize, k: usize) -> usize {
    out * inp * k * k + out
}

/// Parameters of a dense layer (weights and bias).
///
/// ```
/// assert_eq!(mouton_models::summary::dense_params(2048, 1), 2049);
/// ```
pub fn dense_params(inp: usize, out: usize) -> usize {
    out * inp + out
}

/// `1234567` as `1,234,567`.
///
/// ```
/// use mouton_models::summary::thousands;
/// assert_eq!((thousands(1234567), thousands(999), thousands(1000)), ("1,234,567".into(), "999".into(), "1,000".into()));
/// ```
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.layer.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.output.len())
            .max()
            .unwrap_or(12)
            .max(12);
        let line = "-".repeat(w0 + w1 + 16);
        writeln!(f, "Model: {}", self.name)?;
        writeln!(f, "{line}")?;
        writeln!(
            f,
            "{:<w0$}  {:<w1$}  {:>12}",
            "Layer", "Output shape", "Params"
        )?;
        writeln!(f, "{line}")?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:>12}",
                r.layer,
                r.output,
                thousands(r.params)
            )?;
        }
        writeln!(f, "{line}")?;
        writeln!(f, "Total params: {}", thousands(self.total()))
    }
}
