//! Arbitrary strokes in the simplified range, any output size.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else { return };
    let mut s = mouton_data::Strokes::default();
    for chunk in rest.chunks(16) {
        let (xs, ys): (Vec<f32>, Vec<f32>) = chunk
            .chunks_exact(2)
            .map(|p| (p[0] as f32, p[1] as f32))
            .unzip();
        if !xs.is_empty() {
            s.push_stroke(&xs, &ys, None);
        }
    }
    let opts = mouton_data::RasterOptions { size: 1 + size as u32 % 96, ..Default::default() };
    let img = mouton_data::rasterize(&s, &opts).expect("valid options");
    assert_eq!(img.len(), (opts.size * opts.size) as usize);
});
