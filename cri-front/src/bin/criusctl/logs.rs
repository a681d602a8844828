//! `logs`: read the container's CRI log file (ContainerStatus.log_path) like kubelet does.

use crate::conn::Cri;
use crate::containers;
use crate::crilog::{self, Entry, Stream};
use crate::timefmt::{now_ns, parse_duration, parse_rfc3339, rfc3339};
use anyhow::{bail, Context};
use clap::Args;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1)]
    tail: i64,
    /// Only entries newer than a duration (10s, 5m) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Show each line's timestamp.
    #[arg(short = 't', long)]
    timestamps: bool,
    container: String,
}

/// Writes entries to stdout/stderr, a timestamp at the start of each line when asked.
struct Printer {
    timestamps: bool,
    at_line_start: [bool; 2],
}

impl Printer {
    fn write(&mut self, e: &Entry) -> anyhow::Result<()> {
        let i = usize::from(e.stream == Stream::Stderr);
        let mut buf = Vec::new();
        if self.timestamps && self.at_line_start[i] {
            buf.extend_from_slice(rfc3339(e.ts_ns).as_bytes());
            buf.push(b' ');
        }
        buf.extend(e.bytes());
        self.at_line_start[i] = !e.partial;
        let r = match e.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(&buf),
            Stream::Stderr => std::io::stderr().lock().write_all(&buf),
        };
        // A closed pipe (`| head`) ends the output quietly.
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            r => r.context("writing logs"),
        }
    }
}

/// Complete lines in `buf` are parsed and drained; an unfinished tail stays for the next read.
fn take_entries(buf: &mut Vec<u8>) -> Vec<Entry> {
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let chunk: Vec<u8> = buf.drain(..=end).collect();
    chunk
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(crilog::parse)
        .collect()
}

pub async fn logs(c: &Cri, a: LogsArgs) -> anyhow::Result<()> {
    let st = containers::status(c, &a.container, false)
        .await?
        .status
        .with_context(|| format!("container {}: no status", a.container))?;
    if st.log_path.is_empty() {
        bail!("container {} has no log path (its config set none)", st.id);
    }
    let since_ns = match &a.since {
        None => i64::MIN,
        Some(s) => match parse_rfc3339(s) {
            Some(t) => t,
            None => now_ns() - parse_duration(s)?.as_nanos() as i64,
        },
    };
    let path = st.log_path.clone();
    let mut file = std::fs::File::open(&path).with_context(|| format!("opening log {path}"))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .with_context(|| format!("reading {path}"))?;
    let entries: Vec<Entry> = take_entries(&mut buf)
        .into_iter()
        .filter(|e| e.ts_ns >= since_ns)
        .collect();
    let mut lines = crilog::group_lines(entries);
    if a.tail >= 0 {
        let keep = a.tail as usize;
        lines.drain(..lines.len().saturating_sub(keep));
    }
    let mut p = Printer {
        timestamps: a.timestamps,
        at_line_start: [true, true],
    };
    for e in lines.iter().flatten() {
        p.write(e)?;
    }
    if !a.follow {
        return Ok(());
    }
    follow(c, &st.id, &path, file, buf, &mut p).await
}

/// Poll the file for new entries until the container is no longer running and the file is drained.
/// A rotated log (new inode at the path) is reopened once the old file is read to its end.
async fn follow(
    c: &Cri,
    id: &str,
    path: &str,
    mut file: std::fs::File,
    mut buf: Vec<u8>,
    p: &mut Printer,
) -> anyhow::Result<()> {
    let mut last_check = Instant::now();
    let mut running = true;
    loop {
        let mut chunk = Vec::new();
        let n = file.read_to_end(&mut chunk).context("reading log")?;
        buf.extend_from_slice(&chunk);
        for e in take_entries(&mut buf) {
            p.write(&e)?;
        }
        if n > 0 {
            continue;
        }
        if let Ok(m) = std::fs::metadata(path) {
            let cur = file.metadata().context("log metadata")?;
            if m.ino() != cur.ino() {
                file = std::fs::File::open(path).with_context(|| format!("reopening {path}"))?;
                continue;
            }
            if m.len() < file.stream_position().unwrap_or(0) {
                // Truncated in place: start over.
                file.seek(SeekFrom::Start(0)).context("seeking log")?;
                continue;
            }
        }
        if !running {
            return Ok(());
        }
        if last_check.elapsed() > Duration::from_secs(1) {
            last_check = Instant::now();
            let state = containers::status(c, id, false)
                .await
                .ok()
                .and_then(|r| r.status)
                .map(|s| s.state);
            // One more pass after the container stops picks up its last words.
            running = state == Some(1);
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
