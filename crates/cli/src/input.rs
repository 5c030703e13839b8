//! Reading numbers from the command line and from files, with errors that say where.

use std::path::Path;

use crate::BadInput;

/// Parses a comma-separated list such as `3,2,1,4`.
pub fn parse_list(flag: &str, text: &str) -> Result<Vec<f64>, BadInput> {
    text.split(',')
        .enumerate()
        .map(|(k, s)| {
            let s = s.trim();
            s.parse::<f64>()
                .map_err(|_| BadInput(format!("{flag}: entry {} ({s:?}) is not a number", k + 1)))
        })
        .collect()
}

/// Numbers read from a file, with the line each came from (for error messages).
#[derive(Debug)]
pub struct Numbers {
    pub values: Vec<f64>,
    pub lines: Vec<usize>,
}

/// Reads a file of whitespace-separated numbers; errors name the file, line and column.
pub fn read_numbers(path: &Path) -> Result<Numbers, BadInput> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    // A UTF-8 byte order mark, as some Windows editors save text, is not a number.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    let mut lines = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let mut col = 0;
        for tok in line.split_whitespace() {
            // Column of the token, 1-based, for the error message.
            let start = line[col..].find(tok).map_or(col, |o| col + o);
            col = start + tok.len();
            let x = tok.parse::<f64>().map_err(|_| {
                BadInput(format!(
                    "{}:{}:{}: {tok:?} is not a number",
                    path.display(),
                    ln + 1,
                    start + 1
                ))
            })?;
            out.push(x);
            lines.push(ln + 1);
        }
    }
    if out.is_empty() {
        return Err(BadInput(format!("{}: holds no numbers", path.display())));
    }
    Ok(Numbers { values: out, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_errors_name_the_entry() {
        assert_eq!(parse_list("--p", "3, 2,1").unwrap(), vec![3.0, 2.0, 1.0]);
        let e = parse_list("--q", "1,x,3").unwrap_err();
        assert_eq!(e.0, "--q: entry 2 (\"x\") is not a number");
        assert!(parse_list("--q", "1,,3").is_err());
    }

    #[test]
    fn file_errors_name_line_and_column() {
        let dir = std::env::temp_dir().join(format!("mouton-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("u.txt");
        std::fs::write(&f, "1 2\n3  4e0\n 5 abc\n").unwrap();
        let e = read_numbers(&f).unwrap_err();
        assert!(
            e.0.ends_with("u.txt:3:4: \"abc\" is not a number"),
            "{}",
            e.0
        );
        std::fs::write(&f, "1 2\n3\t4e0\n").unwrap();
        let nums = read_numbers(&f).unwrap();
        assert_eq!(nums.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(nums.lines, vec![1, 1, 2, 2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
