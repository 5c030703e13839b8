//! Whole files through every reader: ndjson, Google .bin, .npy, headerless bitmaps (plain or
//! gzip, decided by the bytes themselves).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mouton_data::{Format, RasterOptions};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("in");
    std::fs::write(&p, data).expect("write");
    for f in [Format::Ndjson, Format::Binary, Format::Npy, Format::Bitmap28] {
        let _ = mouton_data::load_images(&p, f, &RasterOptions::default(), &Default::default(), true);
    }
    let _ = mouton_data::file_info(&p, Format::Binary);
    let _ = mouton_data::detect_format(&p);
});
