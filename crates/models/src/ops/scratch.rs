//! Work buffers reused across kernel calls, so that a training step does not zero megabytes of
//! fresh memory for column matrices it overwrites anyway.

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use super::Real;

/// Returned buffers, of any element type.
static POOL: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());
/// Most buffers the pool keeps; more are freed.
const POOL_MAX: usize = 16;

/// A buffer of `len` elements holding stale values from an earlier use: whoever reads an
/// element must have written it first. It returns to a process-wide pool when dropped.
pub(crate) struct Scratch<T: Real> {
    /// Never shortened, so memory once written is not filled again.
    buf: Vec<T>,
    len: usize,
}

impl<T: Real> Scratch<T> {
    /// A buffer of `len` elements, reused when the pool has one large enough.
    pub fn new(len: usize) -> Self {
        let reused = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest that fits, so small requests leave the large buffers to large ones.
            let at = pool
                .iter()
                .enumerate()
                .filter_map(|(i, b)| Some((i, b.downcast_ref::<Vec<T>>()?.len())))
                .filter(|&(_, n)| n >= len)
                .min_by_key(|&(_, n)| n)
                .map(|(i, _)| i);
            at.map(|i| pool.swap_remove(i))
        };
        let mut buf = match reused.map(|b| b.downcast::<Vec<T>>()) {
            Some(Ok(v)) => *v,
            _ => Vec::with_capacity(len),
        };
        if buf.len() < len {
            buf.resize(len, T::ZERO);
        }
        Scratch { buf, len }
    }
}

impl<T: Real> Drop for Scratch<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(Box::new(buf));
        }
    }
}

impl<T: Real> Deref for Scratch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[..self.len]
    }
}

impl<T: Real> DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[..self.len]
    }
}

impl<T: Real> Clone for Scratch<T> {
    fn clone(&self) -> Self {
        let mut s = Scratch::new(self.len);
        s.copy_from_slice(self);
        s
    }
}

impl<T: Real> fmt::Debug for Scratch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scratch({} elements)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_requested_length_and_hold_what_is_written() {
        // The pool is shared with every other test of this binary, running in parallel, so
        // whether a buffer is reused (and what stale values it holds) is not checked here;
        // the convolution tests check the kernels that rely on it.
        for len in [1000, 10, 3000, 0, 1000] {
            let mut a = Scratch::<f64>::new(len);
            assert_eq!(a.len(), len);
            for (i, v) in a.iter_mut().enumerate() {
                *v = i as f64;
            }
            let b = a.clone();
            assert_eq!(b.len(), len);
            assert!(b.iter().enumerate().all(|(i, &v)| v == i as f64));
        }
        let c = Scratch::<f32>::new(2000);
        assert_eq!(c.len(), 2000);
    }
}
