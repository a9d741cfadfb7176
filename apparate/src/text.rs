//! One-line text the binaries share: error chains (durations are in [`crate::duration`]).

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
}
