//! Weights and other named tensors in safetensors files, with stable names (`conv1.weight`, ...,
//! under an optional prefix such as `g.` or `d.`), atomic writes, and loading that checks every
//! tensor before touching the module: a missing tensor, a wrong shape or a wrong dtype is a
//! [`WeightsError`] naming the file and the tensor (dfdx's own loader panics on a dtype
//! mismatch).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype as SDtype, SafeTensors, TensorView};
use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::prelude::*;

/// Errors reading or writing a weights file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, corrupt header, bad offsets).
    #[error("{file}: not a valid safetensors file ({reason})")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the module needs is not in the file.
    #[error("{file}: tensor `{name}` is missing")]
    Missing {
        /// The file.
        file: PathBuf,
        /// The tensor's full name.
        name: String,
    },
    /// A tensor has another shape than the module's.
    #[error("{file}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The file.
        file: PathBuf,
        /// The tensor's full name.
        name: String,
        /// The module's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor has another element type than the module's.
    #[error("{file}: tensor `{name}` is {found}, expected {expected}")]
    Dtype {
        /// The file.
        file: PathBuf,
        /// The tensor's full name.
        name: String,
        /// The module's element type.
        expected: String,
        /// The file's element type.
        found: String,
    },
}

/// An element type that weights files store: f32 or f64, little-endian.
pub trait WeightDtype: Dtype + crate::ops::Real {
    /// The safetensors tag.
    const DTYPE: SDtype;
    /// Little-endian bytes of `v`.
    fn to_bytes(v: &[Self]) -> Vec<u8>;
    /// Values from little-endian bytes (`b.len()` a multiple of the size).
    fn from_bytes(b: &[u8]) -> Vec<Self>;
}

macro_rules! weight_dtype {
    ($t:ty, $tag:expr) => {
        impl WeightDtype for $t {
            const DTYPE: SDtype = $tag;
            fn to_bytes(v: &[Self]) -> Vec<u8> {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            fn from_bytes(b: &[u8]) -> Vec<Self> {
                b.chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("exact chunk")))
                    .collect()
            }
        }
    };
}
weight_dtype!(f32, SDtype::F32);
weight_dtype!(f64, SDtype::F64);

/// Named tensors and string metadata to be written as one safetensors file.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::sheep::Sheep1Generator;
/// use mouton_models::weights::{WeightsFile, WeightsWriter};
/// let dev = Cpu::default();
/// let g = Sheep1Generator::<f32, Cpu>::build(&dev);
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("g.safetensors");
/// let mut w = WeightsWriter::new();
/// w.add_module("g.", &g);
/// w.set_metadata("step", "42");
/// w.write(&path).unwrap();
///
/// let file = WeightsFile::open(&path).unwrap();
/// assert_eq!(file.metadata("step"), Some("42"));
/// let mut g2 = Sheep1Generator::<f32, Cpu>::build(&dev);
/// file.load_module("g.", &mut g2).unwrap();
/// assert_eq!(g2.conv1.weight.as_vec(), g.conv1.weight.as_vec());
/// // Another prefix names tensors that are not there.
/// let err = file.load_module("d.", &mut g2).unwrap_err();
/// assert!(err.to_string().contains("`d.dense.weight` is missing"));
/// ```
#[derive(Debug, Default)]
pub struct WeightsWriter {
    tensors: BTreeMap<String, (SDtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
}

struct Collect<'a> {
    prefix: &'a str,
    out: &'a mut WeightsWriter,
}

impl<E: WeightDtype, D: Device<E>> TensorVisitor<E, D> for Collect<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, D>,
        (t, name): (&Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        let mut v = vec![E::default(); t.shape().num_elements()];
        t.copy_into(&mut v);
        self.out.add(
            &format!("{}{name}", self.prefix),
            t.shape().concrete().into_iter().collect(),
            &v,
        );
        Ok(None)
    }
}

impl WeightsWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every parameter of `module` as `prefix` + its path (`conv1.weight`, ...).
    pub fn add_module<E: WeightDtype, D: Device<E>, M: TensorCollection<E, D>>(
        &mut self,
        prefix: &str,
        module: &M,
    ) {
        let mut c = Collect { prefix, out: self };
        // Reading tensors into host vectors cannot fail on the CPU; on other devices an error
        // would only mean the device itself failed, which later steps report.
        let _ = M::iter_tensors(&mut RecursiveWalker {
            m: (module, String::new()),
            f: &mut c,
        });
    }

    /// Adds one tensor.
    pub fn add<E: WeightDtype>(&mut self, name: &str, shape: Vec<usize>, data: &[E]) {
        self.tensors
            .insert(name.to_string(), (E::DTYPE, shape, E::to_bytes(data)));
    }

    /// Sets a metadata string.
    pub fn set_metadata(&mut self, key: &str, value: &str) {
        self.metadata.insert(key.to_string(), value.to_string());
    }

    /// Writes the file atomically: a temporary file in the same folder, synced, then renamed,
    /// so a crash leaves either the old file or the new one, never a torn one.
    pub fn write(&self, path: &Path) -> Result<(), WeightsError> {
        let io = |source| WeightsError::Io {
            file: path.to_path_buf(),
            source,
        };
        let views = self
            .tensors
            .iter()
            .map(|(k, (dt, shape, data))| {
                TensorView::new(*dt, shape.clone(), data).map(|v| (k.as_str(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WeightsError::Corrupt {
                file: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let bytes = ::safetensors::tensor::serialize(views, &meta)
            .map_err(|e| e.to_string())
            .and_then(with_sorted_metadata)
            .map_err(|reason| WeightsError::Corrupt {
                file: path.to_path_buf(),
                reason,
            })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(&bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        // Temporary files are created private (0600); the result is an ordinary file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io)?;
        }
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// `bytes`, a serialized safetensors file, with its `__metadata__` entries in key order.
/// safetensors 0.3 writes them in a `HashMap`'s random order (its issue #584), so the same
/// weights and metadata made files that differed byte for byte from run to run.
fn with_sorted_metadata(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let short = || "serialized file too short".to_string();
    let len: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(short)?;
    let n = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
    let header = bytes.get(8..8 + n).ok_or_else(short)?;
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| e.to_string())?;
    if let Some(serde_json::Value::Object(meta)) = fields.get_mut("__metadata__") {
        let sorted: BTreeMap<String, serde_json::Value> =
            std::mem::take(meta).into_iter().collect();
        meta.extend(sorted);
    }
    let mut header = serde_json::to_vec(&fields).map_err(|e| e.to_string())?;
    // The format pads the header with spaces to a multiple of 8 bytes.
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + header.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// A safetensors file read into memory and validated.
#[derive(Debug)]
pub struct WeightsFile {
    path: PathBuf,
    bytes: Vec<u8>,
    metadata: HashMap<String, String>,
}

struct Load<'a> {
    file: &'a WeightsFile,
    st: &'a SafeTensors<'a>,
    prefix: &'a str,
    /// First pass: only check; second pass: copy.
    write: bool,
}

impl<E: WeightDtype, D: Device<E>> TensorVisitor<E, D> for Load<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = WeightsError;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, D>,
        (t, name): (&mut Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        let name = format!("{}{name}", self.prefix);
        let expected: Vec<usize> = t.shape().concrete().into_iter().collect();
        let data = self.file.checked::<E>(self.st, &name, &expected)?;
        if self.write {
            t.copy_from(&data);
        }
        Ok(None)
    }
}

impl WeightsFile {
    /// Reads and validates `path`.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| WeightsError::Corrupt {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let file = Self {
            path: path.to_path_buf(),
            bytes,
            metadata,
        };
        file.parse()?;
        Ok(file)
    }

    fn parse(&self) -> Result<SafeTensors<'_>, WeightsError> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| WeightsError::Corrupt {
            file: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// A metadata string.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn checked<E: WeightDtype>(
        &self,
        st: &SafeTensors<'_>,
        name: &str,
        expected: &[usize],
    ) -> Result<Vec<E>, WeightsError> {
        let view = st.tensor(name).map_err(|_| WeightsError::Missing {
            file: self.path.clone(),
            name: name.to_string(),
        })?;
        if view.dtype() != E::DTYPE {
            return Err(WeightsError::Dtype {
                file: self.path.clone(),
                name: name.to_string(),
                expected: format!("{:?}", E::DTYPE),
                found: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != expected as &[usize] {
            return Err(WeightsError::Shape {
                file: self.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        Ok(E::from_bytes(view.data()))
    }

    /// One tensor by name, checked against the expected shape and element type.
    pub fn tensor<E: WeightDtype>(
        &self,
        name: &str,
        shape: &[usize],
    ) -> Result<Vec<E>, WeightsError> {
        self.checked(&self.parse()?, name, shape)
    }

    /// Every tensor's name and shape, sorted by name.
    pub fn entries(&self) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = self
            .parse()
            .map(|st| {
                st.tensors()
                    .into_iter()
                    .map(|(name, view)| (name, view.shape().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.parse().is_ok_and(|st| st.tensor(name).is_ok())
    }

    /// Loads every parameter of `module` from `prefix` + its path. Every tensor is checked
    /// before any is copied, so on error the module is unchanged.
    pub fn load_module<E: WeightDtype, D: Device<E>, M: TensorCollection<E, D>>(
        &self,
        prefix: &str,
        module: &mut M,
    ) -> Result<(), WeightsError> {
        let st = self.parse()?;
        for write in [false, true] {
            let mut load = Load {
                file: self,
                st: &st,
                prefix,
                write,
            };
            M::iter_tensors(&mut RecursiveWalker {
                m: (&mut *module, String::new()),
                f: &mut load,
            })?;
        }
        Ok(())
    }
}
