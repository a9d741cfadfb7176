//! One-line text the binaries share: error chains and durations.

use std::time::Duration;

/// `e` and its sources, joined with `: `, leaving out a source whose text its parent already
/// shows (library errors often print their source inline). For an `anyhow::Error`, pass
/// `err.as_ref()`: its context layers are the chain's first links.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = c.source();
    }
    text
}

/// A duration for progress lines: `4.2s`, `3m07s`, `2h05m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_chain_skips_a_source_its_parent_already_shows() {
        let e = E(
            "cannot read a.pickle: truncated",
            Some(Box::new(E("truncated", Some(Box::new(E("eof", None)))))),
        );
        assert_eq!(error_chain(&e), "cannot read a.pickle: truncated: eof");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(duration(Duration::from_secs(7500)), "2h05m");
    }
}
