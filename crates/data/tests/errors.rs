//! Every class of bad input gives a typed error naming the file and the line or byte offset.

use std::io::Write;
use std::path::{Path, PathBuf};

use mouton_data::{
    read_npy_bitmaps, read_raw_bitmaps, BinaryReader, DataError, Location, NdjsonReader,
};

const GOOD: &str = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[0,9],[0,9]]]}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The first error of an ndjson file whose line 2 is `bad`.
fn ndjson_error(bad: &str) -> DataError {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "in.ndjson",
        format!("{GOOD}\n{bad}\n{GOOD}\n").as_bytes(),
    );
    let items: Vec<_> = NdjsonReader::open(&p).unwrap().collect();
    assert!(items[0].is_ok() && items[2].is_ok(), "only line 2 is bad");
    items.into_iter().nth(1).unwrap().map(|_| ()).unwrap_err()
}

fn assert_line2(e: &DataError, needle: &str) {
    assert_eq!(e.location, Location::Line(2), "{e}");
    let text = e.to_string();
    assert!(text.contains("in.ndjson:2: "), "{text}");
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
}

#[test]
fn ndjson_errors_name_file_and_line() {
    assert_line2(&ndjson_error("{not json"), "key must be a string");
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1"}"#),
        "missing field `drawing`",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":"oops"}"#),
        "invalid type",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":[[[1,2,3],[1,2]]]}"#),
        "stroke 0 has 3 x values but 2 y values",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":[[[1,300],[1,2]]]}"#),
        "x coordinate 300 (point 1) is out of range",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":[[[1,2],[1,2],[0,1]],[[1],[1]]]}"#),
        "mixes simplified",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"x1","drawing":[[[1],[1]]]}"#),
        "key_id \"x1\" is not an unsigned integer",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":[[[1e400],[1]]]}"#),
        "number out of range",
    );
    assert_line2(
        &ndjson_error(r#"{"word":"sheep","key_id":"1","drawing":[]}"#),
        "holds no stroke",
    );
}

#[test]
fn truncated_gzip_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..200 {
        writeln!(gz, "{GOOD}").unwrap();
    }
    let bytes = gz.finish().unwrap();
    let p = write(dir.path(), "cut.ndjson.gz", &bytes[..bytes.len() / 2]);
    let err = NdjsonReader::open(&p)
        .unwrap()
        .find_map(|r| r.err())
        .expect("a cut gzip stream must fail");
    let text = err.to_string();
    assert!(text.contains("cut.ndjson.gz:"), "{text}");
    assert!(text.contains("truncated"), "{text}");
}

#[test]
fn binary_errors_name_the_record_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Vec::new();
    rec.extend(7u64.to_le_bytes());
    rec.extend(b"SE");
    rec.push(0);
    rec.extend(0u32.to_le_bytes());
    rec.extend(1u16.to_le_bytes());
    rec.extend(3u16.to_le_bytes());
    rec.extend([1, 2, 3, 4, 5, 6]);
    let mut two = rec.clone();
    two.extend(&rec[..rec.len() - 2]);
    let p = write(dir.path(), "two.bin", &two);
    let items: Vec<_> = BinaryReader::open(&p).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.location, Location::Offset(rec.len() as u64));
    assert!(
        e.to_string()
            .contains(&format!("two.bin at byte {}: truncated record", rec.len())),
        "{e}"
    );
    assert!(!e.to_string().contains("bitmap28"), "{e}");
}

#[test]
fn binary_errors_on_a_bitmap28_sized_file_say_what_it_may_be() {
    let dir = tempfile::tempdir().unwrap();
    // Three grey 28x28 images read as records: 51,400 strokes of 51,400 points, cut short.
    let p = write(dir.path(), "sheep.bin", &[200u8; 3 * 784]);
    let e = BinaryReader::open(&p)
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("sheep.bin at byte 0: truncated record"),
        "{text}"
    );
    assert!(text.contains("3 images of 28x28"), "{text}");
    assert!(text.contains("`bitmap28`"), "{text}");
    // One byte more, or the same bytes gzipped: no longer a whole number of plain images.
    let odd = write(dir.path(), "odd.bin", &[200u8; 3 * 784 + 1]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[200u8; 3 * 784]).unwrap();
    let mut zipped = gz.finish().unwrap();
    zipped.resize(784, 0); // trailing garbage after the member does not matter here
    let zipped = write(dir.path(), "zipped.bin", &zipped);
    for p in [odd, zipped] {
        let e = BinaryReader::open(&p)
            .unwrap()
            .find_map(Result::err)
            .unwrap();
        assert!(!e.to_string().contains("bitmap28"), "{e}");
    }
}

#[test]
fn npy_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "junk.npy", b"\x93NUMPY\x01\x00garbage");
    assert!(read_npy_bitmaps(&p)
        .unwrap_err()
        .to_string()
        .contains("junk.npy: not a valid .npy file"));

    let f32s = dir.path().join("f.npy");
    {
        use npyz::WriterBuilder;
        let file = std::fs::File::create(&f32s).unwrap();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[1, 784])
            .writer(file)
            .begin_nd()
            .unwrap();
        w.extend(std::iter::repeat_n(0f32, 784)).unwrap();
        w.finish().unwrap();
    }
    let e = read_npy_bitmaps(&f32s).unwrap_err().to_string();
    assert!(e.contains("f.npy: dtype '<f4' is not uint8"), "{e}");

    let shape = dir.path().join("s.npy");
    mouton_data::write_npy_u8(&shape, &[0u8; 2 * 780], &[2, 780]).unwrap();
    let e = read_npy_bitmaps(&shape).unwrap_err().to_string();
    assert!(
        e.contains("s.npy: shape [2, 780]: 780 columns is not a square image"),
        "{e}"
    );

    // A header whose shape multiplies past u64 made npyz panic (overflow) in debug builds.
    let npy_with = |name: &str, shape: &str, data: &[u8]| {
        let mut h = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(data);
        write(dir.path(), name, &b)
    };
    let p = npy_with("huge.npy", "(23529411764705883, 784)", &[0; 784]);
    let e = read_npy_bitmaps(&p).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "huge.npy: shape [23529411764705883, 784] holds more elements than 64 bits count"
        ),
        "{e}"
    );
    // Data cut short is named by its byte offset (128-byte preamble + 884 bytes).
    let p = npy_with("short.npy", "(2, 784)", &[0; 884]);
    let e = read_npy_bitmaps(&p).unwrap_err().to_string();
    assert!(
        e.ends_with("short.npy at byte 1012: data ends after 884 of 1568 bytes"),
        "{e}"
    );
    let p = npy_with("ok.npy", "(2, 784)", &[9; 1568]);
    assert_eq!(read_npy_bitmaps(&p).unwrap().image(1)[783], 9);
    let p = npy_with("noshape.npy", "None", &[]);
    let e = read_npy_bitmaps(&p).unwrap_err().to_string();
    assert!(e.contains("no readable 'shape'"), "{e}");

    let raw = write(dir.path(), "r.bin", &[0u8; 785]);
    let e = read_raw_bitmaps(&raw, 28).unwrap_err().to_string();
    assert!(
        e.contains("r.bin at byte 784: truncated image: 1 of 784 bytes"),
        "{e}"
    );
}

#[test]
fn missing_file_is_named() {
    let e = NdjsonReader::open(Path::new("/nonexistent/x.ndjson"))
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.ndjson: cannot open"),
        "{e}"
    );
}
