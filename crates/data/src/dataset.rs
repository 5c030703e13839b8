//! Images ready for training: f32 tensors in (N, 1, H, W) layout, seeded shuffling, a
//! train/validation split, and batches.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Bitmaps;

/// How pixel values 0..=255 map to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// v / 255, in [0, 1]: FIDLE's convention (sigmoid generators).
    #[default]
    ZeroOne,
    /// v / 127.5 - 1, in [-1, 1]: for tanh generators (DCGAN).
    MinusOneOne,
}

/// A set of single-channel square images as f32, row-major (N, 1, side, side).
///
/// ```
/// use mouton_data::{Bitmaps, Dataset, Scale};
/// let b = Bitmaps { side: 2, data: vec![0, 255, 255, 0, 51, 51, 51, 51] };
/// let d = Dataset::from_bitmaps(&b, Scale::ZeroOne);
/// assert_eq!((d.len(), d.shape()), (2, [2, 1, 2, 2]));
/// assert_eq!(d.image(0), &[0.0, 1.0, 1.0, 0.0]);
/// let d = Dataset::from_bitmaps(&b, Scale::MinusOneOne);
/// assert_eq!(d.image(0), &[-1.0, 1.0, 1.0, -1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    side: usize,
    data: Vec<f32>,
}

impl Dataset {
    /// Converts bitmaps with the given scaling.
    pub fn from_bitmaps(b: &Bitmaps, scale: Scale) -> Self {
        let data = match scale {
            Scale::ZeroOne => b.data.iter().map(|&v| v as f32 / 255.0).collect(),
            Scale::MinusOneOne => b.data.iter().map(|&v| v as f32 / 127.5 - 1.0).collect(),
        };
        Dataset { side: b.side, data }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.data.len() / (self.side * self.side).max(1)
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Image side in pixels.
    pub fn side(&self) -> usize {
        self.side
    }

    /// (N, 1, H, W).
    pub fn shape(&self) -> [usize; 4] {
        [self.len(), 1, self.side, self.side]
    }

    /// All pixels, (N, 1, H, W) row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Image `k`'s pixels.
    pub fn image(&self, k: usize) -> &[f32] {
        let px = self.side * self.side;
        &self.data[k * px..(k + 1) * px]
    }

    /// The images at `indices`, in that order, as a new dataset.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut data = Vec::with_capacity(indices.len() * self.side * self.side);
        for &i in indices {
            data.extend_from_slice(self.image(i));
        }
        Dataset {
            side: self.side,
            data,
        }
    }

    /// Splits off a validation set: a seeded random `val_fraction` of the images (rounded),
    /// the rest for training, each in its original order.
    ///
    /// ```
    /// # use mouton_data::{Bitmaps, Dataset, Scale};
    /// let b = Bitmaps { side: 1, data: (0..100).collect() };
    /// let (train, val) = Dataset::from_bitmaps(&b, Scale::ZeroOne).split(0.1, 7);
    /// assert_eq!((train.len(), val.len()), (90, 10));
    /// let again = Dataset::from_bitmaps(&b, Scale::ZeroOne).split(0.1, 7);
    /// assert_eq!(val, again.1);
    /// ```
    pub fn split(&self, val_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let n = self.len();
        let n_val = ((n as f64) * val_fraction.clamp(0.0, 1.0)).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut val: Vec<usize> = order[..n_val].to_vec();
        let mut train: Vec<usize> = order[n_val..].to_vec();
        val.sort_unstable();
        train.sort_unstable();
        (self.select(&train), self.select(&val))
    }

    /// Batches over a seeded permutation of the images: the same `seed` gives the same order.
    /// With `drop_last`, a final short batch is left out.
    ///
    /// ```
    /// # use mouton_data::{Bitmaps, Dataset, Scale};
    /// let b = Bitmaps { side: 1, data: (0..10).collect() };
    /// let d = Dataset::from_bitmaps(&b, Scale::ZeroOne);
    /// let sizes: Vec<usize> = d.batches(4, 1, false).map(|b| b.len()).collect();
    /// assert_eq!(sizes, [4, 4, 2]);
    /// assert_eq!(d.batches(4, 1, true).count(), 2);
    /// let seen: usize = d.batches(4, 1, false).map(|b| b.indices.len()).sum();
    /// assert_eq!(seen, 10);
    /// ```
    pub fn batches(&self, batch_size: usize, seed: u64, drop_last: bool) -> Batches<'_> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        Batches {
            data: self,
            order,
            at: 0,
            batch_size: batch_size.max(1),
            drop_last,
            buf: Vec::new(),
        }
    }
}

/// One batch: the images' indices and their pixels, (B, 1, H, W) row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Indices into the dataset.
    pub indices: Vec<usize>,
    /// Pixels.
    pub pixels: Vec<f32>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Iterator over [`Batch`]es; see [`Dataset::batches`].
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    at: usize,
    batch_size: usize,
    drop_last: bool,
    buf: Vec<f32>,
}

impl Iterator for Batches<'_> {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        let left = self.order.len() - self.at;
        if left == 0 || (self.drop_last && left < self.batch_size) {
            return None;
        }
        let take = left.min(self.batch_size);
        let indices = self.order[self.at..self.at + take].to_vec();
        self.at += take;
        self.buf.clear();
        for &i in &indices {
            self.buf.extend_from_slice(self.data.image(i));
        }
        Some(Batch {
            indices,
            pixels: self.buf.clone(),
        })
    }
}
