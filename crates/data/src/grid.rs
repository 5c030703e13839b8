//! Contact sheets: many small images tiled into one PNG.

use std::path::Path;

use crate::{write_atomically, DataError, Location};

/// Tiles `images` (each `side x side`, row-major greyscale) into a `cols x rows` grid with a
/// `gap`-pixel border between cells; missing cells stay black. Returns (width, height, pixels).
///
/// ```
/// let a = vec![255u8; 4];
/// let (w, h, px) = mouton_data::tile(&[&a, &a, &a], 2, 2, 2, 1);
/// assert_eq!((w, h), (7, 7));
/// assert_eq!(px[8], 255); // first pixel of the first cell, after the 1-px border
/// assert_eq!(px.iter().filter(|&&v| v == 255).count(), 12);
/// // A cell given too few pixels fills only its whole rows.
/// let (_, _, px) = mouton_data::tile(&[&[255u8; 3]], 2, 1, 1, 0);
/// assert_eq!(px, [255, 255, 0, 0]);
/// ```
pub fn tile(
    images: &[&[u8]],
    side: usize,
    cols: usize,
    rows: usize,
    gap: usize,
) -> (usize, usize, Vec<u8>) {
    let w = cols * side + (cols + 1) * gap;
    let h = rows * side + (rows + 1) * gap;
    let mut px = vec![0u8; w * h];
    for (k, img) in images.iter().take(cols * rows).enumerate() {
        let (cx, cy) = (k % cols, k / cols);
        let (x0, y0) = (gap + cx * (side + gap), gap + cy * (side + gap));
        // An image shorter than side x side fills the rows it has (no panic on a bad size).
        for (y, row) in img.chunks_exact(side.max(1)).take(side).enumerate() {
            px[(y0 + y) * w + x0..(y0 + y) * w + x0 + side].copy_from_slice(row);
        }
    }
    (w, h, px)
}

/// Writes a greyscale PNG atomically (temporary file, then rename).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("dot.png");
/// mouton_data::write_png_gray(&path, 3, 2, &[0, 255, 0, 0, 128, 0])?;
/// let img = image::open(&path)?.to_luma8();
/// assert_eq!((img.width(), img.height(), img.get_pixel(1, 1).0), (3, 2, [128]));
/// // Pixels that do not fill width x height are an error naming the file.
/// let err = mouton_data::write_png_gray(&path, 3, 3, &[0; 6]).unwrap_err();
/// assert!(err.to_string().contains("6 pixels do not make a 3x3 image"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_png_gray(
    path: &Path,
    width: usize,
    height: usize,
    pixels: &[u8],
) -> Result<(), DataError> {
    let img = image::GrayImage::from_raw(width as u32, height as u32, pixels.to_vec()).ok_or_else(
        || {
            DataError::new(
                path,
                Location::File,
                format!(
                    "{} pixels do not make a {width}x{height} image",
                    pixels.len()
                ),
            )
        },
    )?;
    write_atomically(path, |f| {
        img.write_to(f, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })
}
