//! Every shared simplified line (344 categories x 25) read by mouton's ndjson reader, whose
//! plain lines skip serde, equals what a generic JSON parse of the same line says.

use crate::common;

use mouton_data::{parse_ndjson_line, NdjsonKind, Timestamp};
use serde_json::Value;

#[test]
fn real_simplified_lines_read_as_generic_json_says() {
    let Some(dir) = common::quickdraw("simplified_ndjson_first25") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("simplified_ndjson_first25"))
        .expect("listing")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let mut lines = 0;
    for path in &files {
        let text = std::fs::read(path).expect("reading");
        for (i, line) in text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let (d, kind) = parse_ndjson_line(line, path, i as u64 + 1).expect("a valid line");
            assert_eq!(kind, NdjsonKind::Simplified);
            let v: Value = serde_json::from_slice(line).expect("JSON");
            let at = format!("{}:{}", path.display(), i + 1);
            assert_eq!(d.meta.word, v["word"].as_str().unwrap(), "{at}");
            assert_eq!(
                d.meta.countrycode,
                v["countrycode"].as_str().unwrap(),
                "{at}"
            );
            assert_eq!(
                d.meta.recognized,
                v["recognized"].as_bool().unwrap(),
                "{at}"
            );
            let key: u64 = v["key_id"].as_str().unwrap().parse().unwrap();
            assert_eq!(d.meta.key_id, key, "{at}");
            let ts = v["timestamp"].as_str().unwrap().to_owned();
            assert_eq!(d.meta.timestamp, Timestamp::Text(ts), "{at}");
            let strokes = v["drawing"].as_array().unwrap();
            assert_eq!(d.strokes.len(), strokes.len(), "{at}");
            for (k, s) in strokes.iter().enumerate() {
                let (xs, ys, _) = d.strokes.stroke(k);
                let num = |a: &Value| -> Vec<f32> {
                    a.as_array()
                        .unwrap()
                        .iter()
                        .map(|n| n.as_f64().unwrap() as f32)
                        .collect()
                };
                assert_eq!(xs, num(&s[0]).as_slice(), "{at} stroke {k}");
                assert_eq!(ys, num(&s[1]).as_slice(), "{at} stroke {k}");
            }
            lines += 1;
        }
    }
    println!("{lines} lines in {} files agree", files.len());
    assert_eq!(files.len(), 344);
    assert_eq!(lines, 344 * 25);
}
