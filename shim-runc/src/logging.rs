//! Logging setup: tracing into containerd's `log` fifo.
//!
//! containerd creates a `log` fifo in the bundle (the shim's cwd) and copies
//! whatever arrives there into its own log, so that is where the serving shim
//! writes. `start`/`delete` runs write errors only, to stderr, which
//! containerd reports when they fail. The level comes from `-debug` or
//! `CRIUS_SHIM_LOG` (error|warn|info|debug|trace); a plain level filter keeps
//! the regex engine out of the binary.

use std::{fs::OpenOptions, os::unix::fs::OpenOptionsExt, sync::Mutex};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt;

fn level(debug: bool) -> LevelFilter {
    std::env::var("CRIUS_SHIM_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if debug {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        })
}

pub fn init(debug: bool, to_fifo: bool) {
    let builder = fmt()
        .with_max_level(level(debug))
        .with_ansi(false)
        .with_target(false);
    let fifo = if to_fifo {
        // containerd holds the reader open. Non-blocking so that a containerd
        // that is down (full fifo, or no reader) drops log lines instead of
        // hanging the shim; a write-only end never keeps the fifo alive.
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("log")
            .ok()
    } else {
        None
    };
    let res = match fifo {
        Some(f) => builder.with_writer(Mutex::new(f)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    if let Err(e) = res {
        eprintln!("containerd-shim-crius-v2: logger setup failed: {e}");
    }
}

/// For `start`/`delete`: only errors, on stderr (containerd shows them on failure).
pub fn init_quiet() {
    let _ = fmt()
        .with_max_level(LevelFilter::ERROR)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}
