//! TensorBoard event files, so that `tensorboard --logdir runs` shows a run's losses, quality
//! metrics and sample grids as it trains, as FIDLE's notebooks do with Keras and Lightning.
//!
//! An event file is a sequence of TFRecords (the length as u64 little-endian, its masked
//! CRC-32C, the bytes, their masked CRC-32C), each holding a `tensorflow.Event` protobuf: first
//! the file version `brain.Event:2`, then summaries (scalars, PNG images) at a step. The few
//! messages needed are declared here with prost's derive, field numbers as in TensorFlow's
//! `event.proto` and `summary.proto`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::metrics::{EpochRecord, StepRecord};
use crate::{io_err, TrainError};

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    // (6 is the deprecated LogMessage.)
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "Kind", tags = "2, 4")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
}

/// `tensorflow.Summary.Image`.
#[derive(Clone, PartialEq, prost::Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    /// 1: grey, 3: RGB, 4: RGBA.
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

/// `tensorflow.SessionLog`.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionLog {
    /// 1: START.
    #[prost(int32, tag = "1")]
    status: i32,
}

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC-32C: a CRC stored beside data that may hold CRCs itself is rotated
/// and offset, so that CRCs of CRCs do not degenerate.
///
/// ```
/// use mouton_train::tensorboard::masked_crc32c;
/// // CRC-32C("123456789") is 0xE3069283 (its check value); TensorBoard's
/// // `masked_crc32c(b"123456789")` gives 0xC78AB0E5.
/// assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
/// ```
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    CASTAGNOLI
        .checksum(bytes)
        .rotate_right(15)
        .wrapping_add(0xA282_EAD8)
}

/// One TFRecord around `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The record of one event.
fn event_record(wall_time: f64, step: u64, what: What) -> Vec<u8> {
    let event = Event {
        wall_time,
        step: step.min(i64::MAX as u64) as i64,
        what: Some(what),
    };
    record(&prost::Message::encode_to_vec(&event))
}

/// Width and height of a greyscale (8-bit) PNG, from its header; other bytes are an error.
fn gray_png_size(png: &[u8]) -> Result<(u32, u32), String> {
    use image::ImageDecoder;
    let d = image::codecs::png::PngDecoder::new(std::io::Cursor::new(png))
        .map_err(|e| e.to_string())?;
    match d.color_type() {
        image::ColorType::L8 => Ok(d.dimensions()),
        other => Err(format!("{other:?} pixels, not 8-bit grey")),
    }
}

/// Writes one event file in a directory (TensorBoard reads every `*tfevents*` file under its
/// `--logdir`, a run per directory).
///
/// ```
/// use mouton_train::tensorboard::EventWriter;
/// # let tmp = tempfile::tempdir()?;
/// let mut w = EventWriter::create(tmp.path())?;
/// w.add_scalars(1, &[("train/d_loss", 0.69), ("train/g_loss", 0.71)])?;
/// w.flush()?;
/// let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
/// assert!(name.starts_with("events.out.tfevents."), "{name}");
/// // The file version record, then the step's: 8 + 4 + 4 bytes of framing each.
/// let bytes = std::fs::read(w.path())?;
/// assert_eq!(&bytes[..8], &24u64.to_le_bytes());
/// assert!(bytes.windows(12).any(|s| s == b"train/d_loss"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// A new event file in `dir`, named `events.out.tfevents.<seconds>.<microseconds>.mouton.
    /// <pid>` (the time first: a resumed run's file sorts after the earlier ones, as
    /// TensorBoard reads them in name order), starting with the file version record. It never
    /// replaces a file.
    pub fn create(dir: &Path) -> Result<Self, TrainError> {
        let (path, file) = loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let path = dir.join(format!(
                "events.out.tfevents.{:010}.{:06}.mouton.{}",
                now.as_secs(),
                now.subsec_micros(),
                std::process::id()
            ));
            match File::create_new(&path) {
                Ok(f) => break (path, f),
                // Created in the same microsecond by this process: take the next one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::thread::sleep(std::time::Duration::from_micros(1));
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        };
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write(0, What::FileVersion("brain.Event:2".into()))?;
        w.flush()?;
        Ok(w)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: u64, what: What) -> Result<(), TrainError> {
        let wall_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.out
            .write_all(&event_record(wall_time, step, what))
            .map_err(io_err(&self.path))
    }

    /// Scalars at `step`, one event (TensorBoard draws a chart per tag; a `group/` prefix
    /// gathers charts in a section).
    pub fn add_scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<(), TrainError> {
        let value = values
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.into(),
                kind: Some(Kind::SimpleValue(v as f32)),
            })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// A greyscale PNG at `step`, shown in TensorBoard's Images tab with a slider over steps.
    /// Other bytes are refused (TensorBoard would show a broken image).
    pub fn add_gray_png(&mut self, tag: &str, step: u64, png: &[u8]) -> Result<(), TrainError> {
        let (width, height) = gray_png_size(png).map_err(|why| TrainError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("image `{tag}` is not a greyscale PNG: {why}"),
            ),
        })?;
        let image = Image {
            height: height.min(i32::MAX as u32) as i32,
            width: width.min(i32::MAX as u32) as i32,
            colorspace: 1,
            encoded_image_string: png.to_vec(),
        };
        let value = vec![Value {
            tag: tag.into(),
            kind: Some(Kind::Image(image)),
        }];
        self.write(step, What::Summary(Summary { value }))
    }

    /// A step's record of `metrics.jsonl` as scalars: `train/<key>` (`d_loss`, `g_loss`,
    /// `gp`, `d_real`, ...; the keys of the record) and `speed/images_per_s`.
    pub fn add_step(&mut self, r: &StepRecord) -> Result<(), TrainError> {
        let mut v = vec![
            ("train/d_loss", r.d_loss),
            ("train/g_loss", r.g_loss),
            ("train/d_real", r.d_real),
            ("train/d_fake", r.d_fake),
            ("train/grad_norm_d", r.grad_norm_d),
            ("train/grad_norm_g", r.grad_norm_g),
        ];
        let optional = [
            ("train/gp", r.gp),
            ("train/recon", r.recon),
            ("train/kl", r.kl),
            ("train/kl_weight", r.kl_weight),
        ];
        v.extend(optional.iter().filter_map(|&(t, x)| Some((t, x?))));
        v.push(("speed/images_per_s", r.images_per_s));
        self.add_scalars(r.step, &v)
    }

    /// An epoch's record of `metrics.jsonl` as scalars: `quality/swd`,
    /// `quality/swd_real_baseline`, `quality/diversity_ratio`, `quality/swd_trained` (where
    /// measured) and `speed/epoch_seconds`.
    pub fn add_epoch(&mut self, r: &EpochRecord) -> Result<(), TrainError> {
        let optional = [
            ("quality/swd", r.swd),
            ("quality/swd_real_baseline", r.swd_real_baseline),
            ("quality/diversity_ratio", r.diversity_ratio),
            ("quality/swd_trained", r.swd_trained),
        ];
        let mut v: Vec<_> = optional
            .iter()
            .filter_map(|&(t, x)| Some((t, x?)))
            .collect();
        v.push(("speed/epoch_seconds", r.seconds));
        self.add_scalars(r.step, &v)
    }

    /// Marks a restart at `step`: TensorBoard then drops what earlier files recorded at this
    /// step and after (a run killed after its last checkpoint, then resumed from it, trains
    /// those steps again).
    pub fn session_start(&mut self, step: u64) -> Result<(), TrainError> {
        self.write(step, What::SessionLog(SessionLog { status: 1 }))
    }

    /// Pushes what is buffered to the file, so that a TensorBoard watching it sees it.
    pub fn flush(&mut self) -> Result<(), TrainError> {
        self.out.flush().map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of a file, checking every record's framing.
    fn read_events(bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let crc = |r: std::ops::Range<usize>| u32::from_le_bytes(bytes[r].try_into().unwrap());
            assert_eq!(crc(at + 8..at + 12), masked_crc32c(len_bytes));
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(crc(at + 12 + len..at + 16 + len), masked_crc32c(data));
            events.push(<Event as prost::Message>::decode(data).unwrap());
            at += 16 + len;
        }
        events
    }

    #[test]
    fn records_frame_and_decode_what_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(tmp.path()).unwrap();
        w.session_start(7).unwrap();
        w.add_scalars(7, &[("a/x", 0.5), ("a/y", -2.0)]).unwrap();
        let png = {
            let p = tmp.path().join("g.png");
            mouton_data::write_png_gray(&p, 3, 2, &[0, 1, 2, 3, 4, 5]).unwrap();
            std::fs::read(&p).unwrap()
        };
        w.add_gray_png("samples", 7, &png).unwrap();
        let err = w.add_gray_png("bad", 7, b"GIF89a").unwrap_err().to_string();
        assert!(err.contains("image `bad` is not a greyscale PNG"), "{err}");
        w.flush().unwrap();
        let events = read_events(&std::fs::read(w.path()).unwrap());
        assert_eq!(events.len(), 4);
        assert_eq!(
            events[0].what,
            Some(What::FileVersion("brain.Event:2".into()))
        );
        assert_eq!(
            events[1].what,
            Some(What::SessionLog(SessionLog { status: 1 }))
        );
        let Some(What::Summary(s)) = &events[2].what else {
            panic!("{:?}", events[2])
        };
        assert_eq!(events[2].step, 7);
        let tags: Vec<_> = s
            .value
            .iter()
            .map(|v| (v.tag.as_str(), v.kind.clone()))
            .collect();
        assert_eq!(
            tags,
            [
                ("a/x", Some(Kind::SimpleValue(0.5))),
                ("a/y", Some(Kind::SimpleValue(-2.0)))
            ]
        );
        let Some(What::Summary(s)) = &events[3].what else {
            panic!("{:?}", events[3])
        };
        let Some(Kind::Image(im)) = &s.value[0].kind else {
            panic!("{s:?}")
        };
        assert_eq!((im.width, im.height, im.colorspace), (3, 2, 1));
        assert_eq!(im.encoded_image_string, png);
        assert!(events.windows(2).all(|e| e[0].wall_time <= e[1].wall_time));
    }

    /// The bytes TensorBoard's own protobuf classes and RecordWriter give for these events
    /// (`bench/tensorboard_fixture.py`).
    #[test]
    fn records_are_byte_identical_to_tensorboards_writer() {
        let golden = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tensorboard_events.bin"
        ))
        .unwrap();
        let scalars = |v: &[(&str, f32)]| {
            What::Summary(Summary {
                value: v
                    .iter()
                    .map(|&(tag, x)| Value {
                        tag: tag.into(),
                        kind: Some(Kind::SimpleValue(x)),
                    })
                    .collect(),
            })
        };
        let image = What::Summary(Summary {
            value: vec![Value {
                tag: "samples".into(),
                kind: Some(Kind::Image(Image {
                    height: 2,
                    width: 3,
                    colorspace: 1,
                    encoded_image_string: (0..200).collect(),
                })),
            }],
        });
        let ours = [
            event_record(1700000000.25, 0, What::FileVersion("brain.Event:2".into())),
            event_record(1700000001.5, 3, What::SessionLog(SessionLog { status: 1 })),
            event_record(
                1700000002.75,
                3,
                scalars(&[("train/d_loss", 0.1), ("train/g_loss", -1.25)]),
            ),
            event_record(1700000003.0, 0, scalars(&[("quality/swd", 0.0)])),
            event_record(
                1700000004.125,
                (1 << 40) + 7,
                scalars(&[("speed/images_per_s", 123456.75)]),
            ),
            event_record(1700000005.5, 4, image),
        ]
        .concat();
        let first = ours.iter().zip(&golden).position(|(a, b)| a != b);
        assert!(
            ours == golden,
            "{} vs {} bytes, first difference at {first:?}",
            ours.len(),
            golden.len()
        );
    }

    /// A run stopped inside its first epoch and resumed: every step's and epoch's record of
    /// `metrics.jsonl` is in the event files, the resumed file marks the restart, and the last
    /// sample grid of each epoch is the PNG in `samples/`.
    #[test]
    fn a_resumed_training_logs_its_metrics_and_samples() {
        use crate::config::{CriticArch, GeneratorArch, Preset, TrainConfig};
        use crate::trainer::{train, RunOptions};
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let mut cfg = TrainConfig::preset(Preset::Sheep1);
        (cfg.generator, cfg.critic) = (GeneratorArch::MlpG, CriticArch::MlpD);
        (cfg.synthetic_count, cfg.batch_size, cfg.epochs) = (80, 16, 2);
        cfg.tensorboard = true;
        let data = crate::data::load(&cfg).unwrap();
        let first = TrainConfig {
            max_steps: Some(3),
            ..cfg.clone()
        };
        train(&first, &data, &run, &RunOptions::default(), &mut |_| {}).unwrap();
        let resume = RunOptions {
            resume: true,
            ..RunOptions::default()
        };
        let summary = train(&cfg, &data, &run, &resume, &mut |_| {}).unwrap();
        assert!(summary.steps > 4, "two epochs of 4 or more steps");

        let mut files: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("tfevents"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        let first_file = read_events(&std::fs::read(&files[0]).unwrap());
        let second_file = read_events(&std::fs::read(&files[1]).unwrap());
        for f in [&first_file, &second_file] {
            assert_eq!(f[0].what, Some(What::FileVersion("brain.Event:2".into())));
        }
        assert!(!first_file
            .iter()
            .any(|e| matches!(e.what, Some(What::SessionLog(_)))));
        assert_eq!(second_file[1].step, 4);
        assert_eq!(
            second_file[1].what,
            Some(What::SessionLog(SessionLog { status: 1 }))
        );

        // The newest value of each (step, tag), as TensorBoard shows them.
        let mut scalars = std::collections::BTreeMap::new();
        let mut images = std::collections::BTreeMap::new();
        for e in first_file.iter().chain(&second_file) {
            let Some(What::Summary(s)) = &e.what else {
                continue;
            };
            for v in &s.value {
                match &v.kind {
                    Some(Kind::SimpleValue(x)) => {
                        scalars.insert((e.step as u64, v.tag.clone()), *x);
                    }
                    Some(Kind::Image(im)) => {
                        images.insert(e.step as u64, im.encoded_image_string.clone());
                    }
                    None => panic!("{v:?}"),
                }
            }
        }
        let (steps, epochs) = crate::metrics::read(&run.join("metrics.jsonl")).unwrap();
        assert_eq!(steps.len() as u64, summary.steps);
        for r in &steps {
            let at = |tag: &str| scalars.get(&(r.step, format!("train/{tag}"))).copied();
            assert_eq!(at("d_loss"), Some(r.d_loss as f32), "step {}", r.step);
            assert_eq!(at("g_loss"), Some(r.g_loss as f32));
            assert_eq!(at("d_real"), Some(r.d_real as f32));
            assert_eq!(at("grad_norm_g"), Some(r.grad_norm_g as f32));
            assert_eq!(at("gp"), None, "no gradient penalty in this loss");
            let speed = scalars.get(&(r.step, "speed/images_per_s".into()));
            assert_eq!(speed, Some(&(r.images_per_s as f32)));
        }
        // Epoch 1 was recorded at its stop (step 3) and at its end.
        assert_eq!(epochs.len(), 3);
        for r in &epochs {
            let swd = scalars.get(&(r.step, "quality/swd".into()));
            assert_eq!(
                swd,
                Some(&(r.swd.unwrap() as f32)),
                "epoch at step {}",
                r.step
            );
            assert!(images.contains_key(&r.step));
        }
        for r in &epochs[1..] {
            let grid = run.join(format!("samples/epoch_{:03}.png", r.epoch));
            assert!(images[&r.step] == std::fs::read(grid).unwrap());
        }
    }

    #[test]
    fn gray_png_size_reads_the_header_and_refuses_other_images() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("g.png");
        mouton_data::write_png_gray(&p, 70, 30, &[9; 2100]).unwrap();
        assert_eq!(gray_png_size(&std::fs::read(&p).unwrap()), Ok((70, 30)));
        let rgb = tmp.path().join("rgb.png");
        image::RgbImage::new(4, 2).save(&rgb).unwrap();
        let err = gray_png_size(&std::fs::read(&rgb).unwrap()).unwrap_err();
        assert!(err.contains("Rgb8"), "{err}");
        assert!(gray_png_size(b"\x89PNG\r\n\x1a\n").is_err());
        assert!(gray_png_size(b"").is_err());
    }
}
