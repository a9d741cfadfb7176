//! Datasets a user gives the backend.
//!
//! * Image folders (the video datasets): PNG / JPEG frames, read in file-name order, resized so
//!   the shorter side matches the model's input, center-cropped, then normalised: ImageNet
//!   mean/std for 3-channel models, plain scaling to `[0, 1]` for 1-channel ones.
//! * Text (the review datasets): a CSV file with a `text` column or a JSONL file with a `text`
//!   field; turned into token ids by a [`TextEncoder`] (the tokenizer, `tokenizer.json`).
//! * Labels (only for training a backbone): one integer per line, or a CSV column `label`.
//!
//! Every refusal is one line naming the file, the place and what was expected.

use std::path::{Path, PathBuf};

/// The ImageNet channel means (RGB), as torchvision normalises.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// The ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// File extensions read as images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A dataset that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A folder or file that cannot be read.
    #[error("{}: cannot read: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// A folder without images.
    #[error("{}: no images (expected PNG or JPEG frames: *.png, *.jpg, *.jpeg)", dir.display())]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
    /// Something in an image folder that is not an image file.
    #[error("{}: not an image file (expected *.png, *.jpg or *.jpeg; image folders hold only frames)", path.display())]
    NotImage {
        /// The entry.
        path: PathBuf,
    },
    /// An image file that cannot be decoded.
    #[error("{}: unreadable image: {why}", path.display())]
    BadImage {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        why: String,
    },
    /// A malformed line or record of a labels or text file.
    #[error("{}:{line}: {problem}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// A file as a whole is not what was expected (wrong count, missing column, ...).
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        problem: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// How images become model input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageSpec {
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
}

/// The image files of `dir`, sorted by file name. Refuses an empty folder and any entry that is
/// not a PNG / JPEG file (by extension; decoding errors come with [`load_image`]).
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io(&path))?;
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !file_type.is_file() || !is_image {
            return Err(DataError::NotImage { path });
        }
        files.push(path);
    }
    if files.is_empty() {
        return Err(DataError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// The size of a `w x h` image resized so that it covers `out_w x out_h` with its aspect ratio
/// kept (the shorter side matches), before the center crop.
pub fn resize_to_cover(w: usize, h: usize, out_w: usize, out_h: usize) -> (usize, usize) {
    let scale = (out_w as f64 / w.max(1) as f64).max(out_h as f64 / h.max(1) as f64);
    let rw = ((w as f64 * scale).round() as usize).max(out_w);
    let rh = ((h as f64 * scale).round() as usize).max(out_h);
    (rw, rh)
}

/// Normalises 8-bit channel values (`[c][y][x]` order, `channels` planes) in place of a copy:
/// ImageNet mean/std for 3 channels, `v / 255` for 1.
pub fn normalise(pixels: &[u8], channels: usize) -> Vec<f32> {
    let plane = pixels.len() / channels.max(1);
    pixels
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = f32::from(v) / 255.0;
            if channels == 3 {
                let c = i / plane.max(1);
                (x - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
            } else {
                x
            }
        })
        .collect()
}

/// One image as model input, `[channels][height][width]` normalised values.
pub fn load_image(path: &Path, spec: &ImageSpec) -> Result<Vec<f32>, DataError> {
    let bad = |why: String| DataError::BadImage {
        path: path.to_path_buf(),
        why,
    };
    let img = image::ImageReader::open(path)
        .map_err(io(path))?
        .with_guessed_format()
        .map_err(io(path))?
        .decode()
        .map_err(|e| bad(e.to_string()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(bad("the image is empty (0 pixels)".into()));
    }
    let (rw, rh) = resize_to_cover(w, h, spec.width, spec.height);
    let img = if (rw, rh) == (w, h) {
        img
    } else {
        img.resize_exact(rw as u32, rh as u32, image::imageops::FilterType::Triangle)
    };
    let (x0, y0) = ((rw - spec.width) / 2, (rh - spec.height) / 2);
    let img = img.crop_imm(x0 as u32, y0 as u32, spec.width as u32, spec.height as u32);
    let plane = spec.width * spec.height;
    let mut chw = vec![0u8; plane * spec.channels];
    match spec.channels {
        1 => {
            let gray = img.to_luma8();
            chw.copy_from_slice(gray.as_raw());
        }
        3 => {
            let rgb = img.to_rgb8();
            for (i, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    chw[c * plane + i] = px.0[c];
                }
            }
        }
        n => {
            return Err(bad(format!(
                "models with {n} input channels are not supported (1 or 3)"
            )))
        }
    }
    Ok(normalise(&chw, spec.channels))
}

/// Every image of `files` (see [`list_images`]), concatenated `[n][c][h][w]`.
pub fn load_images(files: &[PathBuf], spec: &ImageSpec) -> Result<Vec<f32>, DataError> {
    let mut out = Vec::with_capacity(files.len() * spec.channels * spec.height * spec.width);
    for f in files {
        out.extend(load_image(f, spec)?);
    }
    Ok(out)
}

/// Splits one CSV line into fields (RFC 4180 quoting: `"a,b"`, `""` for a quote inside).
/// Returns `None` for an unterminated quote.
pub fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(cur);
    Some(fields)
}

fn read_text_file(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// Column `name` of the CSV file `path` (header on the first line), one value per record.
/// Records are one line each (quoted fields may hold commas, not line breaks).
pub fn read_csv_column(path: &Path, name: &str) -> Result<Vec<String>, DataError> {
    let text = read_text_file(path)?;
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, h)) => csv_fields(h).ok_or_else(|| DataError::Record {
            path: path.to_path_buf(),
            line: 1,
            problem: "unterminated quote in the header".into(),
        })?,
        None => {
            return Err(DataError::File {
                path: path.to_path_buf(),
                problem: format!("empty file; expected a header line with a `{name}` column"),
            })
        }
    };
    let Some(col) = header.iter().position(|h| h.trim() == name) else {
        return Err(DataError::Record {
            path: path.to_path_buf(),
            line: 1,
            problem: format!(
                "no `{name}` column in the header (found: {})",
                header.join(", ")
            ),
        });
    };
    let mut out = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line).ok_or_else(|| DataError::Record {
            path: path.to_path_buf(),
            line: i + 1,
            problem: "unterminated quote (a record must fit on one line)".into(),
        })?;
        let Some(v) = fields.get(col) else {
            return Err(DataError::Record {
                path: path.to_path_buf(),
                line: i + 1,
                problem: format!(
                    "{} fields, expected at least {} (the `{name}` column)",
                    fields.len(),
                    col + 1
                ),
            });
        };
        out.push(v.clone());
    }
    Ok(out)
}

/// The texts of a CSV (`text` column) or JSONL (`text` field) file, chosen by extension
/// (`.csv`, `.jsonl`).
pub fn read_texts(path: &Path) -> Result<Vec<String>, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let texts = match ext.as_deref() {
        Some("csv") => read_csv_column(path, "text")?,
        Some("jsonl") => {
            let text = read_text_file(path)?;
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let record = |problem: String| DataError::Record {
                    path: path.to_path_buf(),
                    line: i + 1,
                    problem,
                };
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| record(format!("not JSON ({e}); expected one object per line")))?;
                match v.get("text").and_then(|t| t.as_str()) {
                    Some(t) => out.push(t.to_string()),
                    None => return Err(record("no string field `text`".into())),
                }
            }
            out
        }
        _ => {
            return Err(DataError::File {
                path: path.to_path_buf(),
                problem: "unknown text format; expected a .csv file (a `text` column) or a .jsonl file (a `text` field)".into(),
            })
        }
    };
    if texts.is_empty() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            problem: "no texts".into(),
        });
    }
    Ok(texts)
}

/// Turns text into token ids for the NLP models: the tokenizer (`tokenizer.json`,
/// `backend/src/tokenizer.rs`, the NLP models' work) implements it.
///
/// HOOK: text datasets reach the models through this trait; until the tokenizer lands,
/// [`crate::infer`] and `gen-data` refuse NLP models with a message saying so.
pub trait TextEncoder {
    /// Token ids and attention mask (1 = token, 0 = padding), both `seq_len` long.
    fn encode(&self, text: &str, seq_len: usize) -> (Vec<u32>, Vec<u32>);
}

/// Training labels: one non-negative integer per line (`.txt` or anything but `.csv`), or the
/// `label` column of a `.csv` file. Each must be below `classes`; there must be `expected` of
/// them (one per sample).
pub fn read_labels(path: &Path, expected: usize, classes: usize) -> Result<Vec<usize>, DataError> {
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let values: Vec<(usize, String)> = if is_csv {
        read_csv_column(path, "label")?
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i + 2, v))
            .collect()
    } else {
        read_text_file(path)?
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect()
    };
    let mut labels = Vec::with_capacity(values.len());
    for (line, v) in values {
        match v.trim().parse::<usize>() {
            Ok(l) if l < classes => labels.push(l),
            _ => {
                return Err(DataError::Record {
                    path: path.to_path_buf(),
                    line,
                    problem: format!("label {:?}; expected an integer in 0..{classes}", v.trim()),
                })
            }
        }
    }
    if labels.len() != expected {
        return Err(DataError::File {
            path: path.to_path_buf(),
            problem: format!(
                "{} labels, expected {expected} (one per sample, in file-name order)",
                labels.len()
            ),
        });
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes() {
        assert_eq!(
            csv_fields(r#"1,"a, ""b""",c"#).unwrap(),
            vec!["1", r#"a, "b""#, "c"]
        );
        assert_eq!(csv_fields(r#"1,"open"#), None);
    }

    #[test]
    fn resize_covers_the_target() {
        assert_eq!(resize_to_cover(8, 8, 8, 8), (8, 8));
        assert_eq!(resize_to_cover(640, 480, 224, 224), (299, 224));
        assert_eq!(resize_to_cover(100, 400, 50, 50), (50, 200));
    }

    #[test]
    fn texts_come_from_a_csv_column_or_a_jsonl_field() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("reviews.csv");
        std::fs::write(&csv, "id,text\n1,\"good, really\"\n2,bad\n").unwrap();
        assert_eq!(read_texts(&csv).unwrap(), vec!["good, really", "bad"]);
        let jsonl = dir.path().join("reviews.jsonl");
        std::fs::write(&jsonl, "{\"text\": \"fine\"}\n\n{\"text\": \"meh\"}\n").unwrap();
        assert_eq!(read_texts(&jsonl).unwrap(), vec!["fine", "meh"]);
        std::fs::write(&jsonl, "{\"text\": \"fine\"}\n{\"body\": 1}\n").unwrap();
        let e = read_texts(&jsonl).unwrap_err().to_string();
        assert!(
            e.ends_with("reviews.jsonl:2: no string field `text`"),
            "{e}"
        );
        std::fs::write(&csv, "id,body\n1,x\n").unwrap();
        let e = read_texts(&csv).unwrap_err().to_string();
        assert!(e.contains("reviews.csv:1: no `text` column"), "{e}");
        let other = dir.path().join("reviews.txt");
        std::fs::write(&other, "x").unwrap();
        assert!(read_texts(&other)
            .unwrap_err()
            .to_string()
            .contains(".jsonl"));
    }

    #[test]
    fn labels_come_from_lines_or_a_csv_column() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("labels.csv");
        std::fs::write(&csv, "file,label\na.png,3\nb.png,x\n").unwrap();
        let e = read_labels(&csv, 2, 10).unwrap_err().to_string();
        assert!(e.contains("labels.csv:3") && e.contains("\"x\""), "{e}");
        std::fs::write(&csv, "file,label\na.png,3\nb.png,9\n").unwrap();
        assert_eq!(read_labels(&csv, 2, 10).unwrap(), vec![3, 9]);
    }

    #[test]
    fn normalise_scales_gray_and_standardises_rgb() {
        assert_eq!(normalise(&[0, 255], 1), vec![0.0, 1.0]);
        let v = normalise(&[255, 0, 0], 3);
        assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((v[1] - (0.0 - 0.456) / 0.224).abs() < 1e-6);
        assert!((v[2] - (0.0 - 0.406) / 0.225).abs() < 1e-6);
    }
}
