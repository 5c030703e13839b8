//! The last few outputs of mouton's CUDA layers, kept in buffers of ours so that the next
//! layer reads its input without the gradient trick ([`super::read`]).
//!
//! Found by the output tensor's id. dfdx gives a tensor that an operation rewrote a new id,
//! so a kept buffer holds its tensor's values unless that tensor was written in place (dfdx's
//! `&mut` methods such as `axpy`), which mouton never does to a layer's output. Outputs are
//! kept until an optimizer update ends (the next forward pass makes new ones), within a
//! count and a memory bound (the oldest go first).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cudarc::driver::DeviceSlice;

use dfdx::prelude::*;
use dfdx::tensor::UniqueId;

use crate::layers::id_of;

/// dfdx's CUDA buffer type.
pub(crate) type DeviceVec = <Cuda as Storage<f32>>::Vec;

/// Outputs kept at most...
const KEEP: usize = 64;
/// ... and bytes at most.
const KEEP_BYTES: usize = 1 << 30;

static RECENT: Mutex<VecDeque<(UniqueId, Arc<DeviceVec>)>> = Mutex::new(VecDeque::new());

/// Keeps `buf` as the values of `t`.
pub(crate) fn remember<S: Shape, T>(t: &Tensor<S, f32, Cuda, T>, buf: Arc<DeviceVec>) {
    let (Some(id), Ok(mut recent)) = (id_of(t), RECENT.lock()) else {
        return;
    };
    recent.push_back((id, buf));
    let bytes = |r: &VecDeque<(UniqueId, Arc<DeviceVec>)>| -> usize {
        r.iter().map(|(_, b)| 4 * b.len()).sum()
    };
    while recent.len() > KEEP || (recent.len() > 1 && bytes(&recent) > KEEP_BYTES) {
        recent.pop_front();
    }
}

/// Forgets every kept output (an optimizer update ended: the next pass makes new ones).
pub(crate) fn clear() {
    if let Ok(mut recent) = RECENT.lock() {
        recent.clear();
    }
}

/// The kept values of the tensor with id `id`, if they are `len` values.
pub(crate) fn recall(id: UniqueId, len: usize) -> Option<Arc<DeviceVec>> {
    let recent = RECENT.lock().ok()?;
    recent
        .iter()
        .rev()
        .find(|(k, b)| *k == id && b.len() == len)
        .map(|(_, b)| b.clone())
}
