//! Log set-up shared by the `worker` and `coordinator` binaries: `tracing` lines on stderr,
//! coloured only on a terminal, filtered by `RUST_LOG` (default `info`).

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
