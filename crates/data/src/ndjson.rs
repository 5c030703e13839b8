//! Quick, Draw! ndjson, simplified (`drawing: [[x...], [y...]]` per stroke) and raw
//! (`[[x...], [y...], [t...]]`), one drawing per line, read as a stream.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::drawing::{Drawing, Meta, Strokes, Timestamp};
use crate::source::{io_message, open};
use crate::{DataError, Location};

/// Which ndjson flavour a drawing came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdjsonKind {
    /// Coordinates 0..=255 after Google's simplification.
    Simplified,
    /// Device-pixel coordinates and times.
    Raw,
}

/// Largest magnitude accepted for a raw coordinate: far beyond any screen, small enough that
/// arithmetic on it stays exact in f32 to a pixel.
pub const RAW_COORD_LIMIT: f64 = 1.0e7;

/// Parses one ndjson line (without its newline). `line` is 1-based, for the error message.
///
/// ```
/// use mouton_data::{parse_ndjson_line, NdjsonKind};
/// let line = br#"{"word":"sheep","countrycode":"FR","timestamp":"2017-03-28 07:09:01 UTC","recognized":true,"key_id":"42","drawing":[[[0,255],[10,20]]]}"#;
/// let (d, kind) = parse_ndjson_line(line, "sheep.ndjson".as_ref(), 1)?;
/// assert_eq!(kind, NdjsonKind::Simplified);
/// assert_eq!((d.meta.key_id, d.strokes.len(), d.strokes.points()), (42, 1, 2));
///
/// let bad = br#"{"word":"sheep","drawing":[[[0,1],[2]]]}"#;
/// let err = parse_ndjson_line(bad, "sheep.ndjson".as_ref(), 7).unwrap_err();
/// assert!(err.to_string().starts_with("sheep.ndjson:7: "), "{err}");
/// # Ok::<(), mouton_data::DataError>(())
/// ```
pub fn parse_ndjson_line(
    bytes: &[u8],
    file: &Path,
    line: u64,
) -> Result<(Drawing, NdjsonKind), DataError> {
    let mut strokes = Strokes::default();
    let kind =
        parse_into(bytes, &mut strokes).map_err(|m| DataError::new(file, Location::Line(line), m));
    kind.map(|(meta, kind)| (Drawing { meta, strokes }, kind))
}

/// Parses into reusable stroke buffers; returns the metadata and flavour, or a message.
pub(crate) fn parse_into(
    bytes: &[u8],
    strokes: &mut Strokes,
) -> Result<(Meta, NdjsonKind), String> {
    strokes.clear();
    let line = match crate::fast_line::parse_simplified(bytes, strokes) {
        Some(f) => LineFields {
            word: f.word.map(str::to_owned),
            countrycode: f.countrycode.map(str::to_owned),
            timestamp: f.timestamp.map(str::to_owned),
            recognized: f.recognized,
            key_id: f.key_id,
            kind: Some(NdjsonKind::Simplified),
        },
        // Not the plain simplified shape: serde_json reads it (or says what is wrong).
        None => fields_with_serde(bytes, strokes)?,
    };
    finish(line, strokes)
}

/// The line's fields through serde_json alone, strokes into `strokes`.
fn fields_with_serde(bytes: &[u8], strokes: &mut Strokes) -> Result<LineFields, String> {
    strokes.clear();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let line = LineSeed { strokes }
        .deserialize(&mut de)
        .map_err(|e| json_message(&e))?;
    de.end().map_err(|e| json_message(&e))?;
    Ok(line)
}

/// Checks what the grammar leaves open and builds the metadata.
fn finish(line: LineFields, strokes: &Strokes) -> Result<(Meta, NdjsonKind), String> {
    let kind = line.kind.ok_or("`drawing` holds no stroke")?;
    check_coordinates(strokes, kind)?;
    let meta = Meta {
        word: line.word.ok_or("missing field `word`")?,
        countrycode: line.countrycode.unwrap_or_default(),
        timestamp: Timestamp::Text(line.timestamp.unwrap_or_default()),
        recognized: line.recognized.unwrap_or(false),
        key_id: line.key_id.ok_or("missing field `key_id`")?,
    };
    Ok((meta, kind))
}

fn json_message(e: &serde_json::Error) -> String {
    // serde_json counts lines within the one line we gave it; only the column is news.
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

fn check_coordinates(s: &Strokes, kind: NdjsonKind) -> Result<(), String> {
    let limit = match kind {
        NdjsonKind::Simplified => 0.0..=255.0,
        NdjsonKind::Raw => -RAW_COORD_LIMIT..=RAW_COORD_LIMIT,
    };
    for (axis, v) in [("x", &s.x), ("y", &s.y)] {
        if let Some(i) = v.iter().position(|&c| !limit.contains(&(c as f64))) {
            return Err(format!(
                "{axis} coordinate {} (point {i}) is out of range {}..={} for {} drawings",
                v[i],
                limit.start(),
                limit.end(),
                if kind == NdjsonKind::Raw {
                    "raw"
                } else {
                    "simplified"
                }
            ));
        }
    }
    if let Some(i) = s.t.iter().position(|t| !t.is_finite()) {
        return Err(format!("time {} (point {i}) is not finite", s.t[i]));
    }
    Ok(())
}

struct LineFields {
    word: Option<String>,
    countrycode: Option<String>,
    timestamp: Option<String>,
    recognized: Option<bool>,
    key_id: Option<u64>,
    kind: Option<NdjsonKind>,
}

struct LineSeed<'s> {
    strokes: &'s mut Strokes,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = LineFields;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LineFields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = LineFields;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Quick, Draw! drawing object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LineFields, A::Error> {
        let mut out = LineFields {
            word: None,
            countrycode: None,
            timestamp: None,
            recognized: None,
            key_id: None,
            kind: None,
        };
        let mut saw_drawing = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "word" => out.word = Some(map.next_value()?),
                "countrycode" => out.countrycode = Some(map.next_value()?),
                "timestamp" => out.timestamp = Some(map.next_value()?),
                "recognized" => out.recognized = Some(map.next_value()?),
                "key_id" => out.key_id = Some(map.next_value_seed(KeyId)?),
                "drawing" => {
                    saw_drawing = true;
                    out.kind = map.next_value_seed(DrawingSeed {
                        strokes: &mut *self.strokes,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_drawing {
            return Err(de::Error::missing_field("drawing"));
        }
        Ok(out)
    }
}

/// `key_id`: a string of digits in the ndjson files, accepted as a number too.
struct KeyId;

impl<'de> DeserializeSeed<'de> for KeyId {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyId {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key_id (an unsigned integer or a string of digits)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse()
            .map_err(|_| E::custom(format!("key_id {v:?} is not an unsigned integer")))
    }
}

/// `drawing`: a list of strokes, each `[xs, ys]` or `[xs, ys, ts]`, written straight into the
/// flat buffers.
struct DrawingSeed<'s> {
    strokes: &'s mut Strokes,
}

impl<'de> DeserializeSeed<'de> for DrawingSeed<'_> {
    type Value = Option<NdjsonKind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DrawingSeed<'_> {
    type Value = Option<NdjsonKind>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`drawing`: a list of strokes [[x...], [y...]] or [[x...], [y...], [t...]]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kind = None;
        let mut k = 0;
        while let Some(this) = seq.next_element_seed(StrokeSeed {
            strokes: &mut *self.strokes,
            index: k,
        })? {
            if kind.is_some_and(|prev| prev != this) {
                return Err(de::Error::custom(format!(
                    "stroke {k} mixes simplified [x, y] and raw [x, y, t] strokes"
                )));
            }
            kind = Some(this);
            k += 1;
        }
        Ok(kind)
    }
}

struct StrokeSeed<'s> {
    strokes: &'s mut Strokes,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for StrokeSeed<'_> {
    type Value = NdjsonKind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NdjsonKind, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StrokeSeed<'_> {
    type Value = NdjsonKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "stroke {} as [[x...], [y...]] or [[x...], [y...], [t...]]",
            self.index
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NdjsonKind, A::Error> {
        let s = self.strokes;
        let k = self.index;
        let start = s.x.len();
        let missing = |what| de::Error::custom(format!("stroke {k} has no {what} list"));
        seq.next_element_seed(Numbers32(&mut s.x))?
            .ok_or_else(|| missing("x"))?;
        let nx = s.x.len() - start;
        seq.next_element_seed(Numbers32(&mut s.y))?
            .ok_or_else(|| missing("y"))?;
        let ny = s.y.len() - start;
        if nx != ny {
            return Err(de::Error::custom(format!(
                "stroke {k} has {nx} x values but {ny} y values"
            )));
        }
        if nx == 0 {
            return Err(de::Error::custom(format!("stroke {k} has no points")));
        }
        let t_start = s.t.len();
        let kind = match seq.next_element_seed(Numbers64(&mut s.t))? {
            None => NdjsonKind::Simplified,
            Some(()) => {
                let nt = s.t.len() - t_start;
                if nt != nx {
                    return Err(de::Error::custom(format!(
                        "stroke {k} has {nx} points but {nt} times"
                    )));
                }
                NdjsonKind::Raw
            }
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!(
                "stroke {k} has more than three lists"
            )));
        }
        s.ends.push(s.x.len() as u32);
        Ok(kind)
    }
}

struct Numbers32<'v>(&'v mut Vec<f32>);

impl<'de> DeserializeSeed<'de> for Numbers32<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Numbers32<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<f64>()? {
            self.0.push(v as f32);
        }
        Ok(())
    }
}

struct Numbers64<'v>(&'v mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for Numbers64<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Numbers64<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<f64>()? {
            self.0.push(v);
        }
        Ok(())
    }
}

/// The UTF-8 byte order mark some Windows editors put at the start of a text file; skipped.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streams the drawings of an ndjson file (plain or gzip), one line at a time: memory does not
/// grow with the file. Blank lines are skipped.
///
/// ```no_run
/// use mouton_data::NdjsonReader;
/// for item in NdjsonReader::open("sheep.ndjson".as_ref())? {
///     let (drawing, _kind) = item?;
///     println!("{} strokes", drawing.strokes.len());
/// }
/// # Ok::<(), mouton_data::DataError>(())
/// ```
pub struct NdjsonReader {
    file: PathBuf,
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl NdjsonReader {
    /// Opens `path` (gzip detected by magic bytes).
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(NdjsonReader {
            file: path.to_path_buf(),
            input: open(path)?,
            buf: Vec::with_capacity(1 << 12),
            line: 0,
            done: false,
        })
    }

    /// The next raw line (without newline) and its 1-based number, skipping blank lines.
    pub(crate) fn next_line(&mut self) -> Option<Result<(&[u8], u64), DataError>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(DataError::new(
                        &self.file,
                        Location::Line(self.line + 1),
                        io_message(&e),
                    )));
                }
            }
            self.line += 1;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.line == 1 && self.buf.starts_with(UTF8_BOM) {
                self.buf.drain(..UTF8_BOM.len());
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok((&self.buf, self.line)));
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Iterator for NdjsonReader {
    type Item = Result<(Drawing, NdjsonKind), DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        let file = self.file.clone();
        Some(match self.next_line()? {
            Ok((bytes, line)) => parse_ndjson_line(bytes, &file, line),
            Err(e) => Err(e),
        })
    }
}

/// Writes one drawing as a simplified-ndjson line (Google's key order; integer coordinates;
/// `key_id` as a string), newline included.
///
/// ```
/// use mouton_data::{parse_ndjson_line, write_simplified_line};
/// let line = br#"{"word":"sheep","countrycode":"FR","timestamp":"t","recognized":true,"key_id":"42","drawing":[[[0,255],[10,20]]]}"#;
/// let (d, _) = parse_ndjson_line(line, "in".as_ref(), 1)?;
/// let mut out = Vec::new();
/// write_simplified_line(&mut out, &d)?;
/// assert_eq!(&out[..out.len() - 1], &line[..]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_simplified_line(out: &mut impl std::io::Write, d: &Drawing) -> std::io::Result<()> {
    let timestamp = match &d.meta.timestamp {
        Timestamp::Text(t) => t.clone(),
        Timestamp::Unix(s) => s.to_string(),
    };
    let mut strokes = Vec::with_capacity(d.strokes.len());
    for k in 0..d.strokes.len() {
        let (xs, ys, _) = d.strokes.stroke(k);
        let ints = |v: &[f32]| v.iter().map(|&c| c.round() as i64).collect::<Vec<_>>();
        strokes.push([ints(xs), ints(ys)]);
    }
    let value = serde_json::json!({
        "word": d.meta.word,
        "countrycode": d.meta.countrycode,
        "timestamp": timestamp,
        "recognized": d.meta.recognized,
        "key_id": d.meta.key_id.to_string(),
        "drawing": strokes,
    });
    serde_json::to_writer(&mut *out, &value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LINE: &str = r#"{"word":"sheep","countrycode":"FR","timestamp":"2017-03-28 07:09:01.8 UTC","recognized":true,"key_id":"5084390208126976","drawing":[[[0,12,255],[3,0,40]],[[7],[9]]]}"#;

    type Parsed = (Result<(Meta, NdjsonKind), String>, Strokes);

    /// Both parsers on one line: (result, strokes), with the fast path first as in use.
    fn both(bytes: &[u8]) -> [Parsed; 2] {
        let (mut a, mut b) = (Strokes::default(), Strokes::default());
        let ra = parse_into(bytes, &mut a);
        let rb = fields_with_serde(bytes, &mut b).and_then(|l| finish(l, &b));
        [(ra, a), (rb, b)]
    }

    fn same(bytes: &[u8]) {
        let [(ra, a), (rb, b)] = both(bytes);
        match (&ra, &rb) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x, y, "{}", String::from_utf8_lossy(bytes));
                assert_eq!(a, b, "{}", String::from_utf8_lossy(bytes));
            }
            (Err(x), Err(y)) => assert_eq!(x, y, "{}", String::from_utf8_lossy(bytes)),
            _ => panic!("{ra:?} vs {rb:?} on {}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn the_fast_path_reads_googles_shape_and_agrees_with_serde() {
        let mut s = Strokes::default();
        assert!(crate::fast_line::parse_simplified(LINE.as_bytes(), &mut s).is_some());
        same(LINE.as_bytes());
        // Shapes it leaves to serde, each still read (or refused) the same way.
        for line in [
            LINE.replace(
                "\"key_id\":\"5084390208126976\"",
                "\"key_id\":5084390208126976",
            ),
            LINE.replace("\"sheep\"", "\"sh\\u0065ep\""),
            LINE.replace("[7]", "[7.5]"),
            LINE.replace("[7]", "[07]"),
            LINE.replace("[7]", "[-7]"),
            LINE.replace("[7]", "[7e0]"),
            LINE.replace("[7]", "[700]"),
            LINE.replace("[7]", "[]"),
            LINE.replace("[9]", "[9,9]"),
            LINE.replace("[[7],[9]]", "[[7],[9],[1]]"),
            LINE.replace("true", "truex"),
            LINE.replace("true", "null"),
            LINE.replace("\"word\"", "\"other\":1,\"word\""),
            LINE.replace("\"word\":\"sheep\",", ""),
            LINE.replace("\"key_id\":\"5084390208126976\",", ""),
            LINE.replace("\"word\":\"sheep\",", "\"word\":\"a\",\"word\":\"b\","),
            LINE.replace(",", " ,\t"),
            LINE.replace(":", " : "),
            format!(" {LINE} \r"),
            format!("{LINE},"),
            LINE.replace("\"key_id\":\"5084390208126976\"", "\"key_id\":\"+5\""),
            LINE.replace(
                "\"key_id\":\"5084390208126976\"",
                "\"key_id\":18446744073709551615",
            ),
            LINE.replace(
                "\"key_id\":\"5084390208126976\"",
                "\"key_id\":1234567890123456789",
            ),
            LINE.replace(
                "\"key_id\":\"5084390208126976\"",
                "\"key_id\":123456789012345678901234567890",
            ),
            LINE.replace("[7]", "[1234567]"),
            LINE.replace("[7]", "[123456789012345678901234567890]"),
            LINE.replace(
                "\"drawing\":[[[0,12,255],[3,0,40]],[[7],[9]]]",
                "\"drawing\":[]",
            ),
        ] {
            same(line.as_bytes());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        /// Any line the fast path accepts means what serde_json reads, and every line gets the
        /// same result or error through `parse_into` as through serde alone.
        #[test]
        fn mutated_lines_parse_alike(
            edits in proptest::collection::vec((0usize..200, prop::sample::select(
                b" \t,:[]{}\"0123456789.-etruxaflsn\\".to_vec())), 0..4),
            deletes in proptest::collection::vec(0usize..200, 0..3),
        ) {
            let mut bytes = LINE.as_bytes().to_vec();
            for (at, v) in edits {
                let at = at % (bytes.len() + 1);
                if at.is_multiple_of(2) && at < bytes.len() {
                    bytes[at] = v;
                } else {
                    bytes.insert(at, v);
                }
            }
            for at in deletes {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes.remove(at);
                }
            }
            same(&bytes);
        }
    }
}
