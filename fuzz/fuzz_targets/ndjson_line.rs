//! One ndjson line (simplified or raw): parse, and render whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((d, kind)) = mouton_data::parse_ndjson_line(data, "fuzz".as_ref(), 1) {
        let strokes = match kind {
            mouton_data::NdjsonKind::Raw => mouton_data::simplify(&d.strokes),
            mouton_data::NdjsonKind::Simplified => d.strokes,
        };
        let _ = mouton_data::rasterize(&strokes, &Default::default());
    }
});
