//! A serde-free reader for the one line shape Google's simplified ndjson files use: an object of
//! string, boolean and digit-string fields plus `drawing: [[[x...], [y...]], ...]` with small
//! non-negative integers, which is what whole-file rasterization reads 126,121 times (with it,
//! that run went from 1.30-1.35 s to 1.27-1.31 s, and number parsing is 2.5 % of its profile).
//!
//! It only ever says "these are the fields" or "not my shape": anything else (escapes, unknown
//! or repeated keys, fractions, raw `[x, y, t]` strokes, empty lists, malformed JSON) returns
//! `None`, and the caller parses the line with serde_json instead, which gives the same result
//! or the error message. So a line accepted here must mean exactly what serde_json reads.

use crate::drawing::Strokes;

/// The fields of an accepted line; its strokes were appended to the buffers.
pub(crate) struct FastFields<'a> {
    pub word: Option<&'a str>,
    pub countrycode: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub recognized: Option<bool>,
    pub key_id: Option<u64>,
}

/// Parses `bytes` if it has the simplified shape, appending its strokes to `strokes` (which the
/// caller clears again on `None`).
pub(crate) fn parse_simplified<'a>(
    bytes: &'a [u8],
    strokes: &mut Strokes,
) -> Option<FastFields<'a>> {
    let mut c = Cursor { b: bytes, i: 0 };
    let mut f = FastFields {
        word: None,
        countrycode: None,
        timestamp: None,
        recognized: None,
        key_id: None,
    };
    let mut drawing = false;
    c.expect(b'{')?;
    if c.peek()? == b'}' {
        return None;
    }
    loop {
        let key = c.string()?;
        c.expect(b':')?;
        match key {
            "word" if f.word.is_none() => f.word = Some(c.string()?),
            "countrycode" if f.countrycode.is_none() => f.countrycode = Some(c.string()?),
            "timestamp" if f.timestamp.is_none() => f.timestamp = Some(c.string()?),
            "recognized" if f.recognized.is_none() => f.recognized = Some(c.boolean()?),
            "key_id" if f.key_id.is_none() => {
                f.key_id = Some(if c.peek()? == b'"' {
                    // As serde's path does: `str::parse`, whatever it accepts.
                    c.string()?.parse().ok()?
                } else {
                    c.integer(19)?
                })
            }
            "drawing" if !drawing => {
                drawing = true;
                c.strokes(strokes)?;
            }
            _ => return None,
        }
        match c.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    (drawing && c.i == bytes.len()).then_some(f)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Skips JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// The next byte after whitespace, consumed.
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let v = self.peek()?;
        self.i += 1;
        Some(v)
    }

    #[inline]
    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let len = self.b[start..].iter().position(|&v| v == b'"')?;
        let raw = &self.b[start..start + len];
        if raw.iter().any(|&v| v == b'\\' || v < 0x20) {
            return None;
        }
        self.i = start + len + 1;
        std::str::from_utf8(raw).ok()
    }

    fn boolean(&mut self) -> Option<bool> {
        self.ws();
        let rest = &self.b[self.i..];
        let (v, n) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += n;
        // A literal must end there (`truex` is malformed).
        match self.b.get(self.i) {
            Some(v) if v.is_ascii_alphanumeric() => None,
            _ => Some(v),
        }
    }

    /// A non-negative integer of at most `max_digits` digits, in JSON's form (no leading zero,
    /// no fraction or exponent: those go to serde).
    #[inline]
    fn integer(&mut self, max_digits: usize) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&d) = self.b.get(self.i) {
            if !d.is_ascii_digit() {
                break;
            }
            if self.i - start == max_digits {
                return None; // before `v` could overflow
            }
            v = v * 10 + u64::from(d - b'0');
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    /// A non-empty list of integers below 10^7 (exact in f32, as serde's f64 -> f32 gives them),
    /// appended to `out`.
    fn numbers(&mut self, out: &mut Vec<f32>) -> Option<usize> {
        self.expect(b'[')?;
        let start = out.len();
        loop {
            out.push(self.integer(7)? as f32);
            match self.next()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
        Some(out.len() - start)
    }

    /// `[[xs, ys], ...]`: at least one stroke, each two lists of equal, non-zero length.
    fn strokes(&mut self, s: &mut Strokes) -> Option<()> {
        self.expect(b'[')?;
        loop {
            self.expect(b'[')?;
            let nx = self.numbers(&mut s.x)?;
            self.expect(b',')?;
            let ny = self.numbers(&mut s.y)?;
            self.expect(b']')?;
            if nx != ny {
                return None;
            }
            s.ends.push(s.x.len() as u32);
            match self.next()? {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}
