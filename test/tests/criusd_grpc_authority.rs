//! criusd answers gRPC clients that send the socket path as HTTP/2 `:authority`, as grpc-go
//! dialled with a bare path does (crictl, older kubelets), and grpc-java and grpc-python over
//! unix sockets. The client here writes those exact bytes: HPACK literals, the `:authority`
//! field indexed in the dynamic table, then a second request that refers to it by index.

mod criusd_common;

use crius_test::env_or_skip;
use criusd_common::{finish, start};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK string literal, not Huffman-coded (lengths under 127).
fn string(s: &[u8]) -> Vec<u8> {
    assert!(s.len() < 127);
    let mut v = vec![s.len() as u8];
    v.extend(s);
    v
}

#[test]
fn criusd_accepts_the_socket_path_as_authority() {
    let mut env = env_or_skip!("criusd_accepts_the_socket_path_as_authority");
    let Some(d) = start(&mut env) else { return };
    let _ = criusd_common::rt().block_on(criusd_common::client(&d)); // waits until it serves
    let path = d.socket.to_string_lossy().into_owned();

    // Request 1: every field a literal with incremental indexing, as grpc-go's encoder does.
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    first.push(0x44); // :path (static 4)
    first.extend(string(b"/runtime.v1.RuntimeService/Version"));
    first.push(0x41); // :authority (static 1)
    first.extend(string(path.as_bytes()));
    first.push(0x5f); // content-type (static 31)
    first.extend(string(b"application/grpc"));
    first.push(0x40); // te, a new name
    first.extend(string(b"te"));
    first.extend(string(b"trailers"));
    // Request 2: the same fields by dynamic index (newest first: te 62, content-type 63,
    // :authority 64, :path 65).
    let second = vec![0x83, 0x86, 0xc1, 0xc0, 0xbf, 0xbe];
    let empty_message = [0u8, 0, 0, 0, 0]; // VersionRequest{} in gRPC framing

    let mut out = PREFACE.to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    out.extend(frame(0x1, 0x4, 1, &first)); // HEADERS, END_HEADERS
    out.extend(frame(0x0, 0x1, 1, &empty_message)); // DATA, END_STREAM
    out.extend(frame(0x1, 0x4, 3, &second));
    out.extend(frame(0x0, 0x1, 3, &empty_message));

    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&out).expect("write");

    // Read frames until both streams have their answer (a DATA frame) or something failed.
    let mut answered = [false, false];
    let mut seen = Vec::new();
    while !(answered[0] && answered[1]) {
        let mut h = [0u8; 9];
        if let Err(e) = s.read_exact(&mut h) {
            panic!(
                "connection ended ({e}); frames so far {seen:?}\n{}",
                d.log_tail()
            );
        }
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let (kind, stream) = (
            h[3],
            u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        );
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).expect("payload");
        seen.push((kind, stream));
        match kind {
            0x3 => panic!("stream {stream} reset: {payload:?}\n{}", d.log_tail()),
            0x7 => panic!("GOAWAY: {payload:?}\n{}", d.log_tail()),
            0x0 if stream == 1 || stream == 3 => {
                assert!(
                    payload.windows(5).any(|w| w == b"crius"),
                    "a VersionResponse naming crius: {payload:?}"
                );
                answered[(stream / 2) as usize] = true;
            }
            0x4 if h[4] & 0x1 == 0 => s.write_all(&frame(0x4, 0x1, 0, &[])).expect("ack"),
            _ => {}
        }
    }
    drop(s);
    finish(env, &d);
}

/// The real grpcio client from PyPI (grpc-core, as C++, Ruby and PHP clients use): it sends the
/// socket path percent-encoded as `:authority`. Version over `unix://<absolute path>` and over
/// `unix:<relative path>` answers. The venv (grpcio, CRI stubs from proto/) comes from
/// `hack/grpcio-venv.sh`, which this test runs (it does nothing when the venv is current).
#[test]
fn criusd_answers_python_grpcio() {
    let mut env = env_or_skip!("criusd_answers_python_grpcio");
    let venv = std::process::Command::new(crius_test::paths::hack("grpcio-venv.sh"))
        .output()
        .expect("run hack/grpcio-venv.sh");
    assert!(
        venv.status.success(),
        "hack/grpcio-venv.sh: {}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let venv = std::path::PathBuf::from(String::from_utf8_lossy(&venv.stdout).trim());
    let Some(d) = start(&mut env) else { return };
    let _ = criusd_common::rt().block_on(criusd_common::client(&d)); // waits until it serves
    let script = crius_test::paths::repo_root().join("test/grpcio/cri_version.py");
    let dir = d.socket.parent().expect("socket dir");
    let relative = d.socket.file_name().expect("socket name").to_string_lossy();
    for (target, cwd) in [
        (
            format!("unix://{}", d.socket.display()),
            std::path::Path::new("/"),
        ),
        (format!("unix:{relative}"), dir),
    ] {
        let out = std::process::Command::new(venv.join("bin/python"))
            .arg(&script)
            .arg(venv.join("cri"))
            .arg(&target)
            .current_dir(cwd)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "grpcio Version over {target}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log_tail()
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "crius",
            "{target}"
        );
    }
    finish(env, &d);
}
