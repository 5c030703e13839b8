//! Whole files rendered on all cores: ndjson streamed straight into a `.npy` while later batches
//! render (the same images in the same order as collecting them, and nothing left behind when a
//! later batch fails), and Google's binary format in parallel batches (the same images as
//! rendering its records one by one).

use mouton_data::{
    load_images, rasterize_file, rasterize_to_npy, read_npy_bitmaps, synth_flock,
    write_simplified_line, BinaryReader, Filter, Format, RasterOptions, Rasterizer,
};

/// `n` synthetic drawings (several batches' worth), one per line.
fn flock_file(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let mut text = Vec::new();
    for d in synth_flock(n, 3) {
        write_simplified_line(&mut text, &d).unwrap();
    }
    let path = dir.join("flock.ndjson");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn streamed_npy_equals_the_collected_images_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let src = flock_file(dir.path(), 9000);
    let opts = RasterOptions::default();
    for filter in [
        Filter::default(),
        Filter {
            first: Some(5000),
            ..Default::default()
        },
    ] {
        let (images, summary) = rasterize_file(&src, &opts, &filter, false).unwrap();
        let out = dir.path().join("out.npy");
        let (n, streamed) =
            rasterize_to_npy(&src, Format::Ndjson, &opts, &filter, false, &out).unwrap();
        assert_eq!(streamed, summary);
        assert_eq!(n, filter.first.unwrap_or(9000));
        let b = read_npy_bitmaps(&out).unwrap();
        assert_eq!((b.len(), b.side), (n, 28));
        assert!(b.data == images, "streamed images differ ({filter:?})");
        // Not all black: the drawings were rendered.
        assert!(b.image(n - 1).iter().any(|&v| v > 0));
    }
}

#[test]
fn a_bad_line_in_a_later_batch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let src = flock_file(dir.path(), 6000);
    // Line 5000 sits in the second batch, after the first was written to the temporary file.
    let mut lines: Vec<String> = std::fs::read_to_string(&src)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines[4999] = r#"{"word":"sheep","key_id":"1"}"#.into();
    std::fs::write(&src, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.npy");
    let opts = RasterOptions::default();
    let err =
        rasterize_to_npy(&src, Format::Ndjson, &opts, &Filter::default(), false, &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("flock.ndjson:5000: missing field `drawing`"),
        "{err}"
    );
    assert!(!out.exists(), "no half-written output");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("flock.ndjson")]);
    // Skipping it instead: one fewer image.
    let (n, summary) =
        rasterize_to_npy(&src, Format::Ndjson, &opts, &Filter::default(), true, &out).unwrap();
    assert_eq!((n, summary.skipped), (5999, 1));
}

#[test]
fn binary_files_render_in_parallel_batches_like_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    // 9,000 synthetic drawings as Google's binary records (three batches); every third one
    // not recognized, so the filter has something to leave out.
    let mut bin = Vec::new();
    for (k, d) in synth_flock(9000, 5).iter().enumerate() {
        bin.extend((k as u64).to_le_bytes());
        bin.extend(b"FR");
        bin.push((k % 3 != 0) as u8);
        bin.extend(0u32.to_le_bytes());
        bin.extend((d.strokes.len() as u16).to_le_bytes());
        for s in 0..d.strokes.len() {
            let (xs, ys, _) = d.strokes.stroke(s);
            bin.extend((xs.len() as u16).to_le_bytes());
            bin.extend(xs.iter().map(|&x| x.round() as u8));
            bin.extend(ys.iter().map(|&y| y.round() as u8));
        }
    }
    let path = dir.path().join("flock.bin");
    std::fs::write(&path, bin).unwrap();
    let opts = RasterOptions::default();
    let filter = Filter {
        recognized_only: true,
        first: Some(5500),
        ..Default::default()
    };
    let (images, summary) = load_images(&path, Format::Binary, &opts, &filter, false).unwrap();
    assert_eq!((images.len(), summary.kept), (5500, 5500));
    let mut r = Rasterizer::new(opts).unwrap();
    let mut img = vec![0u8; 784];
    let mut k = 0;
    for d in BinaryReader::open(&path).unwrap() {
        let d = d.unwrap();
        if !filter.keeps(&d.meta) {
            continue;
        }
        if k == 5500 {
            break;
        }
        r.render(&d.strokes, &mut img);
        assert!(images.image(k) == &img[..], "image {k}");
        k += 1;
    }
    assert_eq!(k, 5500);
    // The 5,500th kept record is number 8,249 (kept in pairs 3j+1, 3j+2); the 2,750 records
    // 3j before it were left out.
    assert_eq!(summary.filtered, 2750);
}

/// A file saved with a UTF-8 byte order mark (as some Windows editors do), plain or gzipped,
/// is detected as ndjson and reads as the same drawings; error lines still count from 1.
#[test]
fn a_byte_order_mark_before_ndjson_is_skipped() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plain = flock_file(dir.path(), 5);
    let text = std::fs::read(&plain).unwrap();
    let with_bom = dir.path().join("bom.ndjson");
    std::fs::write(&with_bom, [b"\xEF\xBB\xBF".as_slice(), &text].concat()).unwrap();
    let gz = dir.path().join("bom.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&with_bom).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let opts = RasterOptions::default();
    let want = load_images(&plain, Format::Ndjson, &opts, &Filter::default(), false)
        .unwrap()
        .0;
    for path in [&with_bom, &gz] {
        assert_eq!(mouton_data::detect_format(path).unwrap(), Format::Ndjson);
        let got = load_images(path, Format::Ndjson, &opts, &Filter::default(), false).unwrap();
        assert_eq!(got.0.data, want.data, "{}", path.display());
        let drawings: Vec<_> = mouton_data::NdjsonReader::open(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(drawings.len(), 5);
    }
    // A bad first line is still line 1, its columns counted as an editor shows them.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, b"\xEF\xBB\xBF{\"word\": 3}\n").unwrap();
    let err = mouton_data::NdjsonReader::open(&bad)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bad.ndjson:1:") && msg.contains("column 10"),
        "{msg}"
    );
}
