//! Every random stream of a run derives from the run's seed, a stream tag and the step, so a
//! resumed run draws exactly what an uninterrupted one would, with no generator state to save.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Parameter initialization.
    Init = 1,
    /// Data order of an epoch.
    Shuffle = 2,
    /// Latent vectors of a critic update.
    CriticLatent = 3,
    /// Latent vectors of a generator update.
    GeneratorLatent = 4,
    /// Dropout masks.
    Dropout = 5,
    /// BCE label noise and WGAN-GP interpolation weights.
    Labels = 6,
    /// The fixed latent vectors of the sample grids and metrics.
    Samples = 7,
    /// Train / validation split.
    Split = 8,
    /// Synthetic data.
    Synthetic = 9,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit seed for (`seed`, `stream`, `a`, `b`).
///
/// ```
/// use mouton_train::rng::{derive, Stream};
/// let s = derive(0, Stream::Shuffle, 1, 0); // the data order of epoch 1
/// assert_eq!(s, derive(0, Stream::Shuffle, 1, 0));
/// // Every argument changes it: another seed, stream, epoch, or second index.
/// for other in [derive(1, Stream::Shuffle, 1, 0), derive(0, Stream::Dropout, 1, 0),
///               derive(0, Stream::Shuffle, 2, 0), derive(0, Stream::Shuffle, 1, 1)] {
///     assert_ne!(s, other);
/// }
/// ```
pub fn derive(seed: u64, stream: Stream, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed ^ mix(stream as u64)) ^ a) ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// A generator for (`seed`, `stream`, `a`, `b`).
///
/// ```
/// use rand::Rng;
/// use mouton_train::rng::{rng, Stream};
/// let x: u64 = rng(7, Stream::Dropout, 3, 0).gen();
/// assert_eq!(x, rng(7, Stream::Dropout, 3, 0).gen::<u64>());
/// assert_ne!(x, rng(7, Stream::Dropout, 4, 0).gen::<u64>());
/// ```
pub fn rng(seed: u64, stream: Stream, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(seed, stream, a, b))
}
