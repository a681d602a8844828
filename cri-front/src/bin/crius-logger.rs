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
//! Attach (CRI Attach) joins the live streams here, not the log: with `attach <socket>` the
//! logger listens on that unix socket and sends every attacher each chunk as read (a frame:
//! stream byte 1 = stdout, 2 = stderr, u32 big-endian length, bytes), after a first empty frame of
//! stream 0 that says the attacher is registered. An attacher that cannot
//! keep up is dropped rather than stall the container. Without `path` nothing is written to a
//! file: the output is only for attachers.
//!
//! Arguments come as pairs (`path <log file>`, `pidfile <file>`, `max-line <bytes>`,
//! `stdout <fifo>`, `stderr <fifo>`, `open-timeout <secs>`, `stdin-hold <fifo>`: kept open so a
//! container's stdin never sees EOF while criusd restarts); `--key=value` works too
//! (containerd passes a `binary://` URI's query as pairs). SIGUSR2 lets the stdin fifo go. SIGUSR1 reopens the log file
//! (CRI ReopenContainerLog after rotation).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
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

/// The container's attachers: one bounded queue each, written by a thread of its own.
#[derive(Default)]
struct Attachers(
    Mutex<Vec<SyncSender<Arc<Vec<u8>>>>>,
    Mutex<Vec<std::thread::JoinHandle<()>>>,
);

impl Attachers {
    fn send(&self, stream: &str, data: &[u8]) {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(5 + data.len());
        frame.push(if stream == "stderr" { 2 } else { 1 });
        frame.extend((data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        let frame = Arc::new(frame);
        g.retain(|tx| {
            !matches!(
                tx.try_send(frame.clone()),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            )
        });
    }

    /// End every attacher's stream once what is queued for it is written.
    fn close(&self) {
        match self.0.lock() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
        let writers = match self.1.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for w in writers {
            let _ = w.join();
        }
    }
}

/// The frame an attacher gets first, once it is registered: stream 0, length 0.
const JOINED: [u8; 5] = [0; 5];

/// Accept attachers on `socket` until the logger exits.
fn listen(socket: &Path, attachers: Arc<Attachers>) -> std::io::Result<()> {
    if let Some(d) = socket.parent() {
        std::fs::create_dir_all(d)?;
    }
    let _ = std::fs::remove_file(socket);
    let l = std::os::unix::net::UnixListener::bind(socket)?;
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            // A reader gone quiet cannot hold the logger's exit for long.
            let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(5)));
            let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(1024);
            // First frame, empty, stream 0: "joined". Everything read from the container after
            // it reaches this attacher, so criusd passes stdin on only once it has it.
            let _ = tx.try_send(Arc::new(JOINED.to_vec()));
            match attachers.0.lock() {
                Ok(mut g) => g.push(tx),
                Err(p) => p.into_inner().push(tx),
            }
            let writer = std::thread::spawn(move || {
                while let Ok(frame) = rx.recv() {
                    if conn.write_all(&frame).is_err() {
                        return;
                    }
                }
            });
            match attachers.1.lock() {
                Ok(mut g) => g.push(writer),
                Err(p) => p.into_inner().push(writer),
            }
        }
    });
    Ok(())
}

fn pump(
    mut input: File,
    stream: &'static str,
    out: Arc<Mutex<Option<File>>>,
    max_line: usize,
    attachers: Arc<Attachers>,
) {
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
        attachers.send(stream, &buf[..n]);
        let recs = framer.feed(&buf[..n]);
        write_records(&out, stream, recs);
    }
    write_records(&out, stream, framer.finish().into_iter().collect());
}

fn write_records(out: &Arc<Mutex<Option<File>>>, stream: &str, recs: Vec<(logfmt::Tag, Vec<u8>)>) {
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
    let Some(f) = f.as_mut() else { return };
    if let Err(e) = f.write_all(&bytes) {
        eprintln!("crius-logger: write: {e}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = parse_args(&args);
    let id = std::env::var("CONTAINER_ID").unwrap_or_default();
    let path = opts
        .get("path")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let attach = opts
        .get("attach")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    if path.is_none() && attach.is_none() {
        eprintln!("crius-logger {id}: neither `path` nor `attach` given");
        std::process::exit(2);
    }
    let max_line = opts
        .get("max-line")
        .and_then(|s| s.parse().ok())
        .unwrap_or(16 * 1024);
    // Block SIGUSR1/2 before any thread exists, so only the sigwait thread sees them.
    let sigset = match sys::block_signals(&[Signal::SIGUSR1, Signal::SIGUSR2]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crius-logger {id}: block SIGUSR1: {e}");
            std::process::exit(1);
        }
    };
    let file = match path.as_deref().map(open_log).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crius-logger {id}: open {path:?}: {e}");
            std::process::exit(1);
        }
    };
    let out = Arc::new(Mutex::new(file));
    let attachers = Arc::new(Attachers::default());
    if let Some(sock) = &attach {
        if let Err(e) = listen(sock, attachers.clone()) {
            eprintln!("crius-logger {id}: attach socket {}: {e}", sock.display());
        }
    }
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

    // Kept (never read) until the logger exits or SIGUSR2 lets it go: the container's stdin
    // fifo always has a writer, so criusd restarting does not end the container's input; when
    // the input is to end (stdin_once), criusd closes its own end and sends SIGUSR2.
    let stdin_hold = Arc::new(Mutex::new(
        opts.get("stdin-hold")
            .filter(|p| !p.is_empty())
            .and_then(|p| OpenOptions::new().read(true).write(true).open(p).ok()),
    ));
    {
        let out = out.clone();
        let path = path.clone();
        let stdin_hold = stdin_hold.clone();
        std::thread::spawn(move || loop {
            let Ok(sig) = sigset.wait() else { return };
            if sig == Signal::SIGUSR2 {
                match stdin_hold.lock() {
                    Ok(mut g) => *g = None,
                    Err(p) => *p.into_inner() = None,
                }
                continue;
            }
            let Some(path) = &path else { continue };
            match open_log(path) {
                Ok(f) => match out.lock() {
                    Ok(mut g) => *g = Some(f),
                    Err(p) => *p.into_inner() = Some(f),
                },
                Err(e) => eprintln!("crius-logger: reopen {}: {e}", path.display()),
            }
        });
    }
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
            let attachers = attachers.clone();
            threads.push(std::thread::spawn(move || {
                // Blocks until the shim opens its end: EOF then really means the end.
                match File::open(&fifo) {
                    Ok(f) => {
                        opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        pump(f, stream, out, max_line, attachers)
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
                let attachers = attachers.clone();
                threads.push(std::thread::spawn(move || {
                    pump(f, stream, out, max_line, attachers)
                }));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    // The output is over: attachers see the end of their stream.
    attachers.close();
    if let Some(sock) = &attach {
        let _ = std::fs::remove_file(sock);
    }
    if let Ok(f) = out.lock() {
        if let Some(f) = f.as_ref() {
            let _ = f.sync_data();
        }
    }
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
}
