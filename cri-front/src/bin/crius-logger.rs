//! `crius-logger`: the per-container log driver. It turns the container's stdout and
//! stderr into the CRI log file (`<RFC3339Nano> <stream> <P|F> <line>`).
//!
//! Why a process of its own, outside criusd: the log must keep flowing while criusd
//! crashes, restarts or is upgraded, and no byte may be lost. A logger that is not
//! criusd's child keeps its pipes open across all of that. Two ways to start it:
//!
//! - **fifo mode** (criusd's default, works with every shim): criusd makes two fifos,
//!   starts this program detached (own process group, reaped by init once criusd is
//!   gone) with `stdout <fifo> stderr <fifo>`, and gives the fifo paths to the task.
//!   Each fifo is opened blocking, so the logger waits for the shim's writer and stops
//!   at the writer's EOF — when the container's output is over.
//! - **binary mode** (containerd's logging-binary protocol, for shims that support
//!   `binary://` URIs): the shim starts it with stdout on fd 3, stderr on fd 4 and a
//!   ready pipe on fd 5, which is closed once the log file is open.
//!
//! Arguments come as pairs (`path <log file>`, `pidfile <file>`, `max-line <bytes>`,
//! `stdout <fifo>`, `stderr <fifo>`, `open-timeout <secs>`, `stdin-hold <fifo>`: kept open so a
//! container's stdin never sees EOF while criusd restarts); `--key=value` works too
//! (containerd passes a `binary://` URI's query as pairs). SIGUSR1 reopens the log file
//! (CRI ReopenContainerLog after rotation).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crius_cri_front::logfmt::{self, Framer};
use crius_cri_front::sys;
use nix::sys::signal::Signal;

fn parse_args(args: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].trim_start_matches('-');
        if let Some((k, v)) = a.split_once('=') {
            out.insert(k.to_string(), v.to_string());
            i += 1;
        } else if i + 1 < args.len() {
            out.insert(a.to_string(), args[i + 1].clone());
            i += 2;
        } else {
            out.insert(a.to_string(), String::new());
            i += 1;
        }
    }
    out
}

fn open_log(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn pump(mut input: File, stream: &'static str, out: Arc<Mutex<File>>, max_line: usize) {
    let mut framer = Framer::new(max_line);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("crius-logger: read {stream}: {e}");
                break;
            }
        };
        let recs = framer.feed(&buf[..n]);
        write_records(&out, stream, recs);
    }
    write_records(&out, stream, framer.finish().into_iter().collect());
}

fn write_records(out: &Arc<Mutex<File>>, stream: &str, recs: Vec<(logfmt::Tag, Vec<u8>)>) {
    if recs.is_empty() {
        return;
    }
    let ts = logfmt::now_rfc3339_nano();
    let mut bytes = Vec::new();
    for (tag, content) in recs {
        bytes.extend(logfmt::record(&ts, stream, tag, &content));
    }
    // One write per batch under the lock: stdout and stderr records never interleave mid-line.
    let mut f = match out.lock() {
        Ok(f) => f,
        Err(p) => p.into_inner(),
    };
    if let Err(e) = f.write_all(&bytes) {
        eprintln!("crius-logger: write: {e}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = parse_args(&args);
    let id = std::env::var("CONTAINER_ID").unwrap_or_default();
    let Some(path) = opts
        .get("path")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
    else {
        eprintln!("crius-logger {id}: no `path` argument");
        std::process::exit(2);
    };
    let max_line = opts
        .get("max-line")
        .and_then(|s| s.parse().ok())
        .unwrap_or(16 * 1024);
    // Block SIGUSR1 before any thread exists, so only the sigwait thread sees it.
    let sigset = match sys::block_signals(&[Signal::SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crius-logger {id}: block SIGUSR1: {e}");
            std::process::exit(1);
        }
    };
    let file = match open_log(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crius-logger {id}: open {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let out = Arc::new(Mutex::new(file));
    let pidfile = opts
        .get("pidfile")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    if let Some(p) = &pidfile {
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            eprintln!("crius-logger {id}: pidfile {}: {e}", p.display());
        }
    }
    // Binary mode: the shim waits for EOF on this pipe before starting the container.
    if !opts.contains_key("stdout") && !opts.contains_key("stderr") {
        drop(sys::take_fd(5));
    }

    {
        let out = out.clone();
        let path = path.clone();
        std::thread::spawn(move || loop {
            if sigset.wait().is_err() {
                return;
            }
            match open_log(&path) {
                Ok(f) => match out.lock() {
                    Ok(mut g) => *g = f,
                    Err(p) => *p.into_inner() = f,
                },
                Err(e) => eprintln!("crius-logger: reopen {}: {e}", path.display()),
            }
        });
    }

    // Kept (never read) until the logger exits: the container's stdin fifo always has a writer,
    // so criusd restarting does not end the container's input.
    let _stdin_hold = opts
        .get("stdin-hold")
        .filter(|p| !p.is_empty())
        .and_then(|p| OpenOptions::new().read(true).write(true).open(p).ok());
    let mut threads = Vec::new();
    let fifo_mode = opts.contains_key("stdout") || opts.contains_key("stderr");
    if fifo_mode {
        let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wanted = ["stdout", "stderr"]
            .iter()
            .filter(|s| opts.get(**s).is_some_and(|p| !p.is_empty()))
            .count();
        for stream in ["stdout", "stderr"] {
            let Some(fifo) = opts
                .get(stream)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
            else {
                continue;
            };
            let out = out.clone();
            let opened = opened.clone();
            threads.push(std::thread::spawn(move || {
                // Blocks until the shim opens its end: EOF then really means the end.
                match File::open(&fifo) {
                    Ok(f) => {
                        opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        pump(f, stream, out, max_line)
                    }
                    Err(e) => eprintln!("crius-logger: open {}: {e}", fifo.display()),
                }
            }));
        }
        // A task that never starts must not leave a logger waiting forever.
        let timeout = opts
            .get("open-timeout")
            .and_then(|s| s.parse().ok())
            .unwrap_or(300u64);
        let pidfile = pidfile.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(timeout));
            if opened.load(std::sync::atomic::Ordering::SeqCst) < wanted {
                eprintln!("crius-logger {id}: fifos not opened within {timeout}s; exiting");
                if let Some(p) = pidfile {
                    let _ = std::fs::remove_file(p);
                }
                std::process::exit(1);
            }
        });
    } else {
        for (fd, stream) in [(3, "stdout"), (4, "stderr")] {
            if let Some(f) = sys::take_fd(fd) {
                let out = out.clone();
                threads.push(std::thread::spawn(move || pump(f, stream, out, max_line)));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    if let Ok(f) = out.lock() {
        let _ = f.sync_data();
    }
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
}
