//! Renders a grid of synthetic sheep: `cargo run --example synth_grid -p mouton-data -- OUT.png [SEED]`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).map(String::as_str).unwrap_or("synth.png");
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let flock = mouton_data::synth_flock(25, seed);
    let mut r = mouton_data::Rasterizer::new(Default::default()).ok_or("bad options")?;
    let imgs: Vec<Vec<u8>> = flock
        .iter()
        .map(|d| {
            let mut img = vec![0u8; 784];
            r.render(&d.strokes, &mut img);
            img
        })
        .collect();
    let refs: Vec<&[u8]> = imgs.iter().map(Vec::as_slice).collect();
    let (w, h, px) = mouton_data::tile(&refs, 28, 5, 5, 2);
    mouton_data::write_png_gray(out.as_ref(), w, h, &px)?;
    Ok(())
}
