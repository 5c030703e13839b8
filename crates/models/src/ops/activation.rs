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

/// Elements per parallel task: below this, threads cost more than they save.
const CHUNK: usize = 1 << 14;

impl Activation {
    #[inline]
    fn value<T: Real>(self, x: T) -> T {
        match self {
            Activation::Identity => x,
            Activation::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu(s) => {
                if x > T::ZERO {
                    x
                } else {
                    T::of(s) * x
                }
            }
            Activation::Sigmoid => {
                // Stable on both tails: never exponentiates a large positive number.
                if x >= T::ZERO {
                    (T::ONE + (-x).exp()).recip()
                } else {
                    let e = x.exp();
                    e * (T::ONE + e).recip()
                }
            }
            Activation::Tanh => x.tanh(),
        }
    }

    /// dy/dx from the input x and the output y.
    #[inline]
    fn slope<T: Real>(self, x: T, y: T) -> T {
        match self {
            Activation::Identity => T::ONE,
            Activation::Relu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu(s) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::of(s)
                }
            }
            Activation::Sigmoid => y * (T::ONE - y),
            Activation::Tanh => T::ONE - y * y,
        }
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
            for (o, &x) in o.iter_mut().zip(x) {
                *o = act.value(x);
            }
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
            for (((g, &x), &y), &go) in g.iter_mut().zip(x).zip(y).zip(go) {
                *g += act.slope(x, y) * go;
            }
        });
}
