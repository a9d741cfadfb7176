//! Durations as the binaries read them on the command line (`--give-up-after 10m`: a number
//! and a unit) and write them in progress lines (`3m07s`).

use std::time::Duration;

/// A duration flag that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Not `<number><unit>`.
    #[error("invalid duration {text:?}: expected a number and a unit, e.g. 500ms, 30s, 10m, 2h")]
    Invalid {
        /// What was given.
        text: String,
    },
    /// Zero (or a value that rounds to zero milliseconds).
    #[error("invalid duration {text:?}: expected more than 0")]
    Zero {
        /// What was given.
        text: String,
    },
}

/// Parses `500ms`, `30s`, `10m`, `2h` (a whole or decimal number, then `ms`, `s`, `m` or
/// `h`; a bare number is seconds). Zero and negative durations are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid {
        text: text.to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale_ms = match unit.trim() {
        "ms" => 1.0,
        "" | "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return Err(invalid()),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let ms = (value * scale_ms).round();
    if !ms.is_finite() || ms > u64::MAX as f64 / 2.0 {
        return Err(invalid());
    }
    if ms < 1.0 {
        return Err(DurationError::Zero {
            text: text.to_string(),
        });
    }
    Ok(Duration::from_millis(ms as u64))
}

/// A duration as a flag gives it, exact to the millisecond and short: `2s`, `1.5s`, `10m`,
/// `1m30s`, `2h`, `1h30m0s` (messages that quote `--give-up-after`).
pub fn format_flag_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// A duration for progress lines: `4.2s`, `3m07s`, `2h05m`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
