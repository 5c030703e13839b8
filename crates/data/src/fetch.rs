//! Downloading Quick, Draw! files from Google's public bucket, resumably.
//!
//! A download goes to `NAME.part`; an interrupted one is resumed with an HTTP `Range` request
//! (or restarted when the server ignores it), and the file is renamed into place only when the
//! expected length has arrived, so `NAME` is never partial.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{DataError, Location};

/// Google's public bucket.
pub const DEFAULT_BASE_URL: &str = "https://storage.googleapis.com/quickdraw_dataset";
/// Environment variable overriding the base URL (tests point it at a local server).
pub const BASE_URL_ENV: &str = "MOUTON_QUICKDRAW_URL";

/// Which of Google's files to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFormat {
    /// `full/simplified/CATEGORY.ndjson`.
    Simplified,
    /// `full/raw/CATEGORY.ndjson`.
    Raw,
    /// `full/numpy_bitmap/CATEGORY.npy`.
    Bitmap,
    /// `full/binary/CATEGORY.bin`.
    Binary,
}

impl RemoteFormat {
    fn folder_and_ext(self) -> (&'static str, &'static str) {
        match self {
            RemoteFormat::Simplified => ("simplified", "ndjson"),
            RemoteFormat::Raw => ("raw", "ndjson"),
            RemoteFormat::Bitmap => ("numpy_bitmap", "npy"),
            RemoteFormat::Binary => ("binary", "bin"),
        }
    }
}

/// The URL and local file name of `category` in `format`.
///
/// ```
/// use mouton_data::{remote_file, RemoteFormat};
/// let (url, name) = remote_file("https://x/qd", "The Eiffel Tower", RemoteFormat::Bitmap);
/// assert_eq!(url, "https://x/qd/full/numpy_bitmap/The%20Eiffel%20Tower.npy");
/// assert_eq!(name, "The Eiffel Tower.npy");
/// ```
pub fn remote_file(base: &str, category: &str, format: RemoteFormat) -> (String, String) {
    let (folder, ext) = format.folder_and_ext();
    let mut enc = String::new();
    for b in category.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                enc.push(b as char)
            }
            _ => enc.push_str(&format!("%{b:02X}")),
        }
    }
    (
        format!("{}/full/{folder}/{enc}.{ext}", base.trim_end_matches('/')),
        format!("{category}.{ext}"),
    )
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The complete file.
    pub path: PathBuf,
    /// Bytes in it.
    pub bytes: u64,
    /// Bytes that were already there from an interrupted download.
    pub resumed_from: u64,
    /// The file was complete before this call; nothing was downloaded.
    pub already_there: bool,
}

/// Downloads `category` in `format` from `base` into `dir`, resuming a `.part` file left by an
/// interrupted run. `progress(done, total)` is called as bytes arrive (total when known).
///
/// ```
/// use mouton_data::{fetch, RemoteFormat};
/// # use std::io::{BufRead, Write};
/// # // A one-request stand-in for Google's bucket on localhost.
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let base = format!("http://{}", listener.local_addr()?);
/// # std::thread::spawn(move || {
/// #     let (mut conn, _) = listener.accept().unwrap();
/// #     let mut lines = std::io::BufReader::new(conn.try_clone().unwrap()).lines();
/// #     while lines.next().unwrap().unwrap() != "" {}
/// #     conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{}\n{}").unwrap();
/// # });
/// # let dir = tempfile::tempdir()?;
/// // `base` is DEFAULT_BASE_URL in real use; here a local server sends 5 bytes.
/// let mut seen = Vec::new();
/// let got = fetch(&base, "sheep", RemoteFormat::Simplified, dir.path(), |done, total| {
///     seen.push((done, total))
/// })?;
/// assert_eq!((got.bytes, got.already_there), (5, false));
/// assert_eq!(got.path, dir.path().join("sheep.ndjson"));
/// assert_eq!(seen.last(), Some(&(5, Some(5))));
/// // The file is there now: no second download (the server would not answer one).
/// let again = fetch(&base, "sheep", RemoteFormat::Simplified, dir.path(), |_, _| {})?;
/// assert!(again.already_there);
/// // Names that could leave `dir` are refused before any request.
/// assert!(fetch(&base, "../sheep", RemoteFormat::Raw, dir.path(), |_, _| {}).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fetch(
    base: &str,
    category: &str,
    format: RemoteFormat,
    dir: &Path,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Fetched, DataError> {
    if category.is_empty() || category.contains(['/', '\\']) || category.starts_with('.') {
        return Err(DataError::new(
            category,
            Location::File,
            "not a category name",
        ));
    }
    let (url, name) = remote_file(base, category, format);
    let path = dir.join(&name);
    let part = dir.join(format!("{name}.part"));
    let fail = |p: &Path, m: String| DataError::new(p, Location::File, m);
    if path.is_file() {
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        return Ok(Fetched {
            path,
            bytes,
            resumed_from: 0,
            already_there: true,
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, format!("cannot create folder: {e}")))?;
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut req = agent.get(&url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(404, _)) => {
            return Err(fail(
                Path::new(&url),
                format!("not found (HTTP 404): is {category:?} a Quick, Draw! category?"),
            ))
        }
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            // The part file is already the whole file: the server has nothing past it.
            std::fs::rename(&part, &path)
                .map_err(|e| fail(&path, format!("cannot rename into place: {e}")))?;
            return Ok(Fetched {
                path,
                bytes: have,
                resumed_from: have,
                already_there: false,
            });
        }
        Err(ureq::Error::Status(code, r)) => {
            return Err(fail(
                Path::new(&url),
                format!("HTTP {code} {}", r.status_text()),
            ))
        }
        Err(e) => return Err(fail(Path::new(&url), format!("download failed: {e}"))),
    };
    // 206: the server resumes; 200: it sends everything again, so start over.
    let resumed_from = if resp.status() == 206 { have } else { 0 };
    let length: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let total = length.map(|l| l + resumed_from);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed_from > 0)
        .truncate(resumed_from == 0)
        .open(&part)
        .map_err(|e| fail(&part, format!("cannot open: {e}")))?;
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = resumed_from;
    progress(done, total);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                // Keep what arrived: the next run resumes from it.
                let _ = file.flush();
                return Err(fail(
                    Path::new(&url),
                    format!("download interrupted after {done} bytes ({e}); run again to resume"),
                ));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| fail(&part, format!("write failed: {e}")))?;
        done += n as u64;
        progress(done, total);
    }
    file.sync_all()
        .map_err(|e| fail(&part, format!("write failed: {e}")))?;
    if let Some(t) = total {
        if done != t {
            return Err(fail(
                Path::new(&url),
                format!("connection closed after {done} of {t} bytes; run again to resume"),
            ));
        }
    }
    std::fs::rename(&part, &path)
        .map_err(|e| fail(&path, format!("cannot rename into place: {e}")))?;
    Ok(Fetched {
        path,
        bytes: done,
        resumed_from,
        already_there: false,
    })
}
