//! Logging through tracing on stderr: warnings by default, more with each `-v`.
//! `RUST_LOG` overrides the level. Secrets are kept out by their type (`secret::Secret`).

use tracing_subscriber::EnvFilter;

/// `quiet` and `verbose` are the global `-q` and `-v` flags; `ansi` is the printer's colour
/// decision, so logs piped to a file or the journal carry no escape codes.
pub fn init(quiet: bool, verbose: u8, ansi: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("duo_selfhost={level},llama_cpp=warn,warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(verbose >= 2)
        .try_init();
}
