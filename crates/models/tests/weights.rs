//! Weights files: round trip, and a clear error (naming file and tensor) for every mismatch,
//! leaving the module untouched.

use dfdx::prelude::*;
use mouton_models::modules::{Conv2d, Dense, Same};
use mouton_models::sheep::{Sheep1Discriminator, Sheep1Generator};
use mouton_models::weights::{WeightsError, WeightsFile, WeightsWriter};

#[test]
fn round_trip_in_f64_and_metadata() {
    let dev = Cpu::seed_from_u64(1);
    let d = Sheep1Discriminator::<f64, Cpu>::build(&dev);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.safetensors");
    let mut w = WeightsWriter::new();
    w.add_module("", &d);
    w.add::<f64>("extra", vec![2], &[1.5, -2.0]);
    w.write(&path).unwrap();
    let f = WeightsFile::open(&path).unwrap();
    let mut d2 = Sheep1Discriminator::<f64, Cpu>::build(&dev);
    f.load_module("", &mut d2).unwrap();
    assert_eq!(d2.conv3.weight.as_vec(), d.conv3.weight.as_vec());
    assert_eq!(d2.dense.bias.as_vec(), d.dense.bias.as_vec());
    assert_eq!(f.tensor::<f64>("extra", &[2]).unwrap(), [1.5, -2.0]);
    assert!(f.contains("conv1.weight") && !f.contains("nope"));
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn wrong_shape_wrong_dtype_missing_and_corrupt_are_clear_errors() {
    let dev = Cpu::seed_from_u64(2);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.safetensors");
    let mut w = WeightsWriter::new();
    w.add_module("", &Conv2d::<1, 8, 4, 2, Same, f32, Cpu>::build(&dev));
    w.write(&small).unwrap();

    // Same names, other shapes.
    let mut other = Conv2d::<1, 16, 4, 2, Same, f32, Cpu>::build(&dev);
    let before = other.weight.as_vec();
    let err = WeightsFile::open(&small)
        .unwrap()
        .load_module("", &mut other)
        .unwrap_err();
    assert!(matches!(err, WeightsError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("small.safetensors") && msg.contains("`weight`"),
        "{msg}"
    );
    assert!(
        msg.contains("[8, 1, 4, 4]") && msg.contains("[16, 1, 4, 4]"),
        "{msg}"
    );
    assert_eq!(other.weight.as_vec(), before, "nothing loaded on error");

    // f32 file into an f64 module (dfdx itself would panic here).
    let mut wide = Conv2d::<1, 8, 4, 2, Same, f64, Cpu>::build(&dev);
    let err = WeightsFile::open(&small)
        .unwrap()
        .load_module("", &mut wide)
        .unwrap_err();
    assert!(matches!(err, WeightsError::Dtype { .. }), "{err}");
    assert!(err.to_string().contains("F32") && err.to_string().contains("F64"));

    // Names the file does not have.
    let mut dense = Dense::<3, 2, f32, Cpu>::build(&dev);
    let mut w = WeightsWriter::new();
    w.add::<f32>("weight", vec![2, 3], &[0.0; 6]);
    let partial = dir.path().join("partial.safetensors");
    w.write(&partial).unwrap();
    let err = WeightsFile::open(&partial)
        .unwrap()
        .load_module("", &mut dense)
        .unwrap_err();
    assert!(
        err.to_string().ends_with("tensor `bias` is missing"),
        "{err}"
    );

    // Truncated and garbage files.
    let bytes = std::fs::read(&small).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let err = WeightsFile::open(&cut).unwrap_err();
    assert!(matches!(err, WeightsError::Corrupt { .. }), "{err}");
    assert!(err.to_string().starts_with(&cut.display().to_string()));
    std::fs::write(&cut, b"hello").unwrap();
    assert!(matches!(
        WeightsFile::open(&cut),
        Err(WeightsError::Corrupt { .. })
    ));
    let err = WeightsFile::open(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }));
}

#[test]
fn generator_and_critic_share_one_file_under_prefixes() {
    let dev = Cpu::seed_from_u64(3);
    let g = Sheep1Generator::<f32, Cpu>::build(&dev);
    let d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("both.safetensors");
    let mut w = WeightsWriter::new();
    w.add_module("g.", &g);
    w.add_module("d.", &d);
    w.write(&path).unwrap();
    let f = WeightsFile::open(&path).unwrap();
    let (mut g2, mut d2) = (
        Sheep1Generator::<f32, Cpu>::build(&dev),
        Sheep1Discriminator::<f32, Cpu>::build(&dev),
    );
    f.load_module("g.", &mut g2).unwrap();
    f.load_module("d.", &mut d2).unwrap();
    assert_eq!(g2.dense.weight.as_vec(), g.dense.weight.as_vec());
    assert_eq!(d2.conv1.weight.as_vec(), d.conv1.weight.as_vec());
}

/// The same tensors and metadata give the same bytes, whatever order the metadata was set in
/// (safetensors itself writes metadata in a hash map's random order).
#[test]
fn the_same_weights_and_metadata_give_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..16).map(|i| format!("key{i:02}")).collect();
    let write = |name: &str, reversed: bool| {
        let mut w = WeightsWriter::new();
        w.add::<f32>("b", vec![2], &[1.0, 2.0]);
        w.add::<f32>("a", vec![1], &[3.0]);
        let mut order: Vec<&String> = keys.iter().collect();
        if reversed {
            order.reverse();
        }
        for k in order {
            w.set_metadata(k, &format!("value of {k}"));
        }
        let path = dir.path().join(name);
        w.write(&path).unwrap();
        path
    };
    let (one, two) = (
        write("one.safetensors", false),
        write("two.safetensors", true),
    );
    let bytes = std::fs::read(&one).unwrap();
    assert_eq!(bytes, std::fs::read(&two).unwrap());
    // The header: its length, a multiple of 8, then the metadata in key order.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at: Vec<usize> = keys
        .iter()
        .map(|k| header.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
    let f = WeightsFile::open(&one).unwrap();
    assert_eq!(f.metadata("key07"), Some("value of key07"));
    assert_eq!(f.tensor::<f32>("b", &[2]).unwrap(), [1.0, 2.0]);
    assert_eq!(f.tensor::<f32>("a", &[1]).unwrap(), [3.0]);
}
