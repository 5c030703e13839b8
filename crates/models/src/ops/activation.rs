//! Element-wise activations in one multithreaded pass each (dfdx's LeakyReLU is four
//! single-threaded ops with a fixed 0.05 slope). Derivatives at the kinks follow PyTorch:
//! ReLU'(0) = 0, LeakyReLU'(0) = slope.

use rayon::prelude::*;

use super::Real;

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// x.
    Identity,
    /// max(x, 0).
    Relu,
    /// x if x > 0, else slope x (FIDLE uses 0.2).
    LeakyRelu(f64),
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh x.
    Tanh,
}

impl Activation {
    /// Whether act'(x) can be told from y = act(x) alone (all but a negative LeakyReLU slope:
    /// for a slope >= 0, y > 0 exactly where x > 0), so a fused layer need keep only its output.
    ///
    /// ```
    /// use mouton_models::ops::activation::Activation;
    /// assert!(Activation::LeakyRelu(0.2).derivative_from_output());
    /// assert!(!Activation::LeakyRelu(-0.5).derivative_from_output());
    /// ```
    pub fn derivative_from_output(&self) -> bool {
        !matches!(self, Activation::LeakyRelu(s) if *s < 0.0)
    }

    /// `xs[i] = act(xs[i])` on all threads, for an output already written.
    pub(crate) fn apply_in_place_par<T: Real>(&self, xs: &mut [T]) {
        if *self != Activation::Identity {
            xs.par_chunks_mut(CHUNK)
                .for_each(|c| self.apply_in_place(c));
        }
    }

    /// `xs[i] = act(xs[i])`, serially (for callers already running in parallel).
    pub(crate) fn apply_in_place<T: Real>(&self, xs: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::Relu => xs
                .iter_mut()
                .for_each(|x| *x = if *x > T::ZERO { *x } else { T::ZERO }),
            Activation::LeakyRelu(s) => {
                let s = T::of(s);
                xs.iter_mut()
                    .for_each(|x| *x = if *x > T::ZERO { *x } else { s * *x });
            }
            Activation::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid(*x)),
            Activation::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
        }
    }
}

/// `grad_x = act'(x) grad_out`, from the output `y` of the forward pass alone; for the
/// activations where [`Activation::derivative_from_output`] holds (same values as
/// [`activation_backward`] there).
///
/// # Panics
/// If the slices' lengths differ, or for a negative LeakyReLU slope (programming errors).
///
/// ```
/// use mouton_models::ops::activation::{activation_backward_from_output, Activation};
/// let mut g = [9.0f64; 3];
/// activation_backward_from_output(Activation::LeakyRelu(0.2), &[-0.2, 0.0, 2.0], &[1.0; 3], &mut g);
/// assert_eq!(g, [0.2, 0.2, 1.0]);
/// ```
pub fn activation_backward_from_output<T: Real>(
    act: Activation,
    y: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) {
    assert!(
        y.len() == grad_out.len() && grad_out.len() == grad_x.len(),
        "slice sizes"
    );
    assert!(act.derivative_from_output(), "a negative LeakyReLU slope");
    grad_x
        .par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .zip(grad_out.par_chunks(CHUNK))
        .for_each(|((g, y), go)| {
            let all = g.iter_mut().zip(y).zip(go);
            match act {
                Activation::Identity => g.copy_from_slice(go),
                Activation::Relu => {
                    for ((g, &y), &go) in all {
                        *g = if y > T::ZERO { go } else { T::ZERO };
                    }
                }
                Activation::LeakyRelu(s) => {
                    let s = T::of(s);
                    for ((g, &y), &go) in all {
                        *g = if y > T::ZERO { go } else { s * go };
                    }
                }
                Activation::Sigmoid => {
                    for ((g, &y), &go) in all {
                        *g = y * (T::ONE - y) * go;
                    }
                }
                Activation::Tanh => {
                    for ((g, &y), &go) in all {
                        *g = (T::ONE - y * y) * go;
                    }
                }
            }
        });
}

/// Elements per parallel task: below this, threads cost more than they save.
const CHUNK: usize = 1 << 14;

/// The logistic function. (Callers match the activation once, outside their loops, so each
/// arm is a plain loop the compiler can vectorize; a match per element cannot be.)
#[inline]
fn sigmoid<T: Real>(x: T) -> T {
    // Stable on both tails: never exponentiates a large positive number.
    if x >= T::ZERO {
        (T::ONE + (-x).exp()).recip()
    } else {
        let e = x.exp();
        e * (T::ONE + e).recip()
    }
}

/// `out = act(x)`.
///
/// ```
/// use mouton_models::ops::activation::{activation_forward, Activation};
/// let mut y = [0.0f32; 3];
/// activation_forward(Activation::LeakyRelu(0.2), &[-1.0, 0.0, 2.0], &mut y);
/// assert_eq!(y, [-0.2, 0.0, 2.0]);
/// ```
pub fn activation_forward<T: Real>(act: Activation, x: &[T], out: &mut [T]) {
    assert_eq!(x.len(), out.len(), "slice sizes");
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            // Copied, then mapped in place while in cache: one formula per activation for
            // this and the fused convolutions (which must agree to the bit).
            o.copy_from_slice(x);
            act.apply_in_place(o);
        });
}

/// `grad_x += act'(x) grad_out`, given the input `x` and output `y` of the forward pass.
///
/// ```
/// use mouton_models::ops::activation::{activation_backward, Activation};
/// let mut g = [0.0f64; 3];
/// activation_backward(Activation::LeakyRelu(0.2), &[-1.0, 0.0, 2.0], &[-0.2, 0.0, 2.0], &[1.0; 3], &mut g);
/// assert_eq!(g, [0.2, 0.2, 1.0]);
/// ```
pub fn activation_backward<T: Real>(
    act: Activation,
    x: &[T],
    y: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) {
    assert!(
        x.len() == y.len() && y.len() == grad_out.len() && grad_out.len() == grad_x.len(),
        "slice sizes"
    );
    grad_x
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .zip(y.par_chunks(CHUNK))
        .zip(grad_out.par_chunks(CHUNK))
        .for_each(|(((g, x), y), go)| {
            let all = g.iter_mut().zip(x).zip(y).zip(go);
            match act {
                Activation::Identity => {
                    for (g, &go) in g.iter_mut().zip(go) {
                        *g += go;
                    }
                }
                Activation::Relu => {
                    for (((g, &x), _), &go) in all {
                        *g += if x > T::ZERO { go } else { T::ZERO };
                    }
                }
                Activation::LeakyRelu(s) => {
                    let s = T::of(s);
                    for (((g, &x), _), &go) in all {
                        *g += if x > T::ZERO { go } else { s * go };
                    }
                }
                Activation::Sigmoid => {
                    for (((g, _), &y), &go) in all {
                        *g += y * (T::ONE - y) * go;
                    }
                }
                Activation::Tanh => {
                    for (((g, _), &y), &go) in all {
                        *g += (T::ONE - y * y) * go;
                    }
                }
            }
        });
}
