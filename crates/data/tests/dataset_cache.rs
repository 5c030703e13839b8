//! The training-facing API: cache keys, split and batch invariants.

use std::collections::HashSet;

use mouton_data::{
    load_images_cached, Bitmaps, CacheStatus, Dataset, Format, RasterOptions, Scale,
};

const LINE: &str = r#"{"word":"sheep","countrycode":"FR","timestamp":"","recognized":true,"key_id":"1","drawing":[[[0,99],[0,99]]]}"#;

#[test]
fn cache_is_keyed_by_content_and_settings_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("s.ndjson");
    let cache = dir.path().join("cache");
    std::fs::write(&src, format!("{LINE}\n{LINE}\n")).unwrap();
    let load = |size: u32| {
        let opts = RasterOptions {
            size,
            ..Default::default()
        };
        load_images_cached(
            &src,
            Format::Ndjson,
            &opts,
            &Default::default(),
            false,
            &cache,
        )
        .unwrap()
    };
    let (a, _, s, entry) = load(28);
    assert_eq!((s, a.len()), (CacheStatus::Miss, 2));
    assert_eq!(load(28).2, CacheStatus::Hit);
    assert_eq!(
        load(32).2,
        CacheStatus::Miss,
        "another size is another entry"
    );
    std::fs::write(&src, format!("{LINE}\n")).unwrap();
    let (b, _, s, _) = load(28);
    assert_eq!((s, b.len()), (CacheStatus::Miss, 1), "new content, new key");
    // A torn or corrupt entry is rebuilt, not trusted.
    std::fs::write(&src, format!("{LINE}\n{LINE}\n")).unwrap();
    std::fs::write(&entry, b"\x93NUMPY garbage").unwrap();
    let (c, _, s, _) = load(28);
    assert_eq!((s, c), (CacheStatus::Miss, a));
}

#[test]
fn split_and_batches_cover_everything_once() {
    let b = Bitmaps {
        side: 2,
        data: (0..=255u8).cycle().take(4 * 103).collect(),
    };
    let d = Dataset::from_bitmaps(&b, Scale::MinusOneOne);
    assert!(d.as_slice().iter().all(|v| (-1.0..=1.0).contains(v)));
    let (train, val) = d.split(0.2, 3);
    assert_eq!((train.len(), val.len()), (82, 21));
    let (_, val2) = d.split(0.2, 4);
    assert_ne!(val, val2, "the seed chooses the split");

    let epoch =
        |seed| -> Vec<usize> { d.batches(16, seed, false).flat_map(|b| b.indices).collect() };
    let (e1, e1b, e2) = (epoch(1), epoch(1), epoch(2));
    assert_eq!(e1, e1b, "same seed, same order");
    assert_ne!(e1, e2, "another seed, another order");
    let set: HashSet<usize> = e1.iter().copied().collect();
    assert_eq!(
        (e1.len(), set.len()),
        (103, 103),
        "each image exactly once per epoch"
    );
    for batch in d.batches(16, 1, true) {
        assert_eq!(batch.len(), 16);
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(&batch.pixels[k * 4..(k + 1) * 4], d.image(i));
        }
    }
}

#[test]
fn random_sample_is_seeded_and_in_file_order() {
    let b: Vec<u8> = (0..50u8)
        .flat_map(|k| std::iter::repeat_n(k, 784))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.bin");
    std::fs::write(&p, &b).unwrap();
    let pick = |seed| {
        let filter = mouton_data::Filter {
            random: Some((10, seed)),
            ..Default::default()
        };
        let (imgs, s) = mouton_data::load_images(
            &p,
            Format::Bitmap28,
            &RasterOptions::default(),
            &filter,
            false,
        )
        .unwrap();
        assert_eq!((s.kept, s.filtered), (10, 40));
        (0..imgs.len())
            .map(|k| imgs.image(k)[0])
            .collect::<Vec<u8>>()
    };
    let (a, a2, c) = (pick(1), pick(1), pick(2));
    assert_eq!(a, a2);
    assert_ne!(a, c);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "file order: {a:?}");
}
