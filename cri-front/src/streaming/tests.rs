//! The streaming server end to end over real sockets, with a runtime that runs real host
//! processes (a pty for `tty`) and forwards to real TCP servers: both protocols, each of exec,
//! attach and port-forward, and the token rules.

use super::runtime::{StreamError, StreamIo, StreamRuntime};
use super::spdy::session::{Role, Session, Stream};
use super::{Config, StreamingServer};
use async_trait::async_trait;
use crius_proto::runtime as cri;
use futures::{SinkExt, StreamExt};
use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

mod unread_input;

/// Runs commands on the host; "containers" are ignored, except that attach runs a line echoer.
#[derive(Default)]
struct HostRuntime {
    started: AtomicUsize,
}

async fn copy_in(mut from: super::BoxRead, mut to: impl tokio::io::AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

impl HostRuntime {
    async fn run(&self, cmd: Vec<String>, mut io: StreamIo) -> Result<i32, StreamError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut c = tokio::process::Command::new(&cmd[0]);
        c.args(&cmd[1..]).kill_on_drop(true);
        if io.tty {
            let pty =
                nix::pty::openpty(None, None).map_err(|e| StreamError::Failed(e.to_string()))?;
            let slave_name = nix::unistd::ttyname(pty.slave.as_fd())
                .map_err(|e| StreamError::Failed(e.to_string()))?;
            let fd = |f: &std::os::fd::OwnedFd| {
                f.try_clone()
                    .map(Stdio::from)
                    .map_err(|e| StreamError::Failed(e.to_string()))
            };
            c.stdin(fd(&pty.slave)?)
                .stdout(fd(&pty.slave)?)
                .stderr(fd(&pty.slave)?);
            let mut resize = io.resize.take();
            // Apply the first size before the command looks at it.
            if let Some(r) = resize.as_mut() {
                if let Ok(Some(sz)) = tokio::time::timeout(Duration::from_secs(2), r.recv()).await {
                    set_size(&slave_name, sz);
                }
            }
            let mut child = c.spawn().map_err(|e| StreamError::Failed(e.to_string()))?;
            drop(pty.slave);
            let master = std::fs::File::from(pty.master);
            let reader = tokio::fs::File::from_std(
                master
                    .try_clone()
                    .map_err(|e| StreamError::Failed(e.to_string()))?,
            );
            let writer = tokio::fs::File::from_std(master);
            if let Some(stdin) = io.stdin.take() {
                tokio::spawn(copy_in(stdin, writer));
            }
            if let Some(mut r) = resize {
                tokio::spawn(async move {
                    while let Some(sz) = r.recv().await {
                        set_size(&slave_name, sz);
                    }
                });
            }
            let out = io.stdout.take();
            let copy = tokio::spawn(async move {
                if let Some(mut out) = out {
                    let mut reader = reader;
                    // EIO once the command and its children closed the terminal: the end.
                    let _ = tokio::io::copy(&mut reader, &mut out).await;
                    let _ = out.shutdown().await;
                }
            });
            let st = child
                .wait()
                .await
                .map_err(|e| StreamError::Failed(e.to_string()))?;
            let _ = tokio::time::timeout(Duration::from_secs(2), copy).await;
            return Ok(st.code().unwrap_or(128));
        }
        c.stdin(if io.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| StreamError::Failed(e.to_string()))?;
        if let (Some(stdin), Some(to)) = (io.stdin.take(), child.stdin.take()) {
            tokio::spawn(copy_in(stdin, to));
        }
        let mut tasks = Vec::new();
        for (pipe, sink) in [
            (
                child.stdout.take().map(|p| Box::new(p) as super::BoxRead),
                io.stdout.take(),
            ),
            (
                child.stderr.take().map(|p| Box::new(p) as super::BoxRead),
                io.stderr.take(),
            ),
        ] {
            if let (Some(mut p), Some(mut s)) = (pipe, sink) {
                tasks.push(tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut p, &mut s).await;
                    let _ = s.shutdown().await;
                }));
            }
        }
        let st = child
            .wait()
            .await
            .map_err(|e| StreamError::Failed(e.to_string()))?;
        for t in tasks {
            let _ = t.await;
        }
        Ok(st.code().unwrap_or(128))
    }
}

fn set_size(tty: &std::path::Path, sz: super::TermSize) {
    let _ = std::process::Command::new("stty")
        .arg("-F")
        .arg(tty)
        .args([
            "cols",
            &sz.width.to_string(),
            "rows",
            &sz.height.to_string(),
        ])
        .status();
}

#[async_trait]
impl StreamRuntime for HostRuntime {
    async fn exec(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> Result<i32, StreamError> {
        if container_id == "missing" {
            return Err(StreamError::NotFound(format!("container {container_id}")));
        }
        self.run(cmd, io).await
    }

    async fn attach(&self, _container_id: &str, io: StreamIo) -> Result<(), StreamError> {
        let script = "echo ready; while read l; do echo got-$l; done";
        self.run(vec!["sh".into(), "-c".into(), script.into()], io)
            .await
            .map(|_| ())
    }

    async fn port_forward(
        &self,
        _pod: &str,
        port: u16,
        conn: DuplexStream,
    ) -> Result<(), StreamError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| StreamError::Failed(format!("connect to port {port}: {e}")))?;
        let (mut cr, mut cw) = tokio::io::split(conn);
        let (mut tr, mut tw) = tcp.split();
        // Done when the pod side has said all it will say (as containerd's CRI plugin does).
        let to_pod = async {
            let _ = tokio::io::copy(&mut cr, &mut tw).await;
            let _ = tw.shutdown().await;
            std::future::pending::<()>().await
        };
        let from_pod = async {
            let _ = tokio::io::copy(&mut tr, &mut cw).await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = to_pod => {}
            _ = from_pod => {}
        }
        Ok(())
    }
}

async fn server() -> (StreamingServer, Arc<HostRuntime>) {
    let rt = Arc::new(HostRuntime::default());
    let s = StreamingServer::start(Config::default(), rt.clone())
        .await
        .expect("start");
    (s, rt)
}

fn exec_req(cmd: &[&str], stdin: bool, tty: bool) -> cri::ExecRequest {
    cri::ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        stdin,
        stdout: true,
        stderr: !tty,
        tty,
    }
}

// ---- WebSocket client ----

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_connect(url: &str, protocols: &str) -> (Ws, String) {
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocols).expect("header"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    let p = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ws, p)
}

/// Everything per channel until the server closes.
async fn ws_drain(ws: &mut Ws) -> Vec<Vec<u8>> {
    let mut ch = vec![Vec::new(); 5];
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Binary(b) = m {
            if let Some((&c, body)) = b.split_first() {
                if let Some(buf) = ch.get_mut(usize::from(c)) {
                    buf.extend_from_slice(body);
                }
            }
        }
    }
    ch
}

fn status(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|_| panic!("status JSON: {}", String::from_utf8_lossy(b)))
}

fn bin(ch: u8, data: &[u8]) -> Message {
    let mut v = vec![ch];
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

#[tokio::test]
async fn websocket_exec_streams_output_and_exit_code() {
    let (s, _) = server().await;
    let url = s
        .exec(exec_req(
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            false,
            false,
        ))
        .expect("url")
        .url;
    let (mut ws, proto) = ws_connect(&url, "v5.channel.k8s.io, v4.channel.k8s.io").await;
    assert_eq!(proto, "v5.channel.k8s.io");
    let ch = ws_drain(&mut ws).await;
    assert_eq!(ch[1], b"out\n");
    assert_eq!(ch[2], b"err\n");
    let st = status(&ch[3]);
    assert_eq!(st["reason"], "NonZeroExitCode");
    assert_eq!(st["details"]["causes"][0]["message"], "3");
}

#[tokio::test]
async fn websocket_v5_stdin_close_gives_eof_and_v4_works() {
    let (s, _) = server().await;
    let url = s.exec(exec_req(&["cat"], true, false)).expect("url").url;
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await;
    ws.send(bin(0, b"hello through stdin\n"))
        .await
        .expect("send");
    ws.send(bin(255, &[0])).await.expect("close stdin");
    let ch = ws_drain(&mut ws).await;
    assert_eq!(ch[1], b"hello through stdin\n");
    assert_eq!(status(&ch[3])["status"], "Success");

    let url = s
        .exec(exec_req(&["echo", "v4"], false, false))
        .expect("url")
        .url;
    let (mut ws, proto) = ws_connect(&url, "v4.channel.k8s.io").await;
    assert_eq!(proto, "v4.channel.k8s.io");
    let ch = ws_drain(&mut ws).await;
    assert_eq!(ch[1], b"v4\n");
}

#[tokio::test]
async fn websocket_tty_resize_reaches_the_terminal() {
    let (s, _) = server().await;
    let cmd = ["sh", "-c", "stty size; read x; stty size"];
    let url = s.exec(exec_req(&cmd, true, true)).expect("url").url;
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await;
    ws.send(bin(4, br#"{"Width":100,"Height":30}"#))
        .await
        .expect("resize");
    // Wait for the first size to show, then resize and let the command go on.
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("30 100") {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b.first() == Some(&1) => out.extend_from_slice(&b[1..]),
            Some(Ok(_)) => {}
            _ => panic!("stream ended: {}", String::from_utf8_lossy(&out)),
        }
    }
    ws.send(bin(4, br#"{"Width":120,"Height":40}"#))
        .await
        .expect("resize");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(bin(0, b"go\n")).await.expect("stdin");
    let ch = ws_drain(&mut ws).await;
    let rest = String::from_utf8_lossy(&ch[1]);
    assert!(rest.contains("40 120"), "{rest:?}");
    assert_eq!(status(&ch[3])["status"], "Success");
}

#[tokio::test]
async fn websocket_attach_sends_stdin_and_sees_output() {
    let (s, _) = server().await;
    let url = s
        .attach(cri::AttachRequest {
            container_id: "c1".into(),
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .expect("url")
        .url;
    let (mut ws, _) = ws_connect(&url, "v4.channel.k8s.io").await;
    ws.send(bin(0, b"ping\n")).await.expect("send");
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("got-ping") {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if b.first() == Some(&1) => {
                out.extend_from_slice(&b[1..])
            }
            Ok(Some(Ok(_))) => {}
            _ => panic!("attach output: {}", String::from_utf8_lossy(&out)),
        }
    }
    assert!(String::from_utf8_lossy(&out).starts_with("ready\n"));
}

/// A TCP server answering each connection with "echo:" + what it read, then closing.
async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = c.read(&mut buf).await.unwrap_or(0);
                let _ = c.write_all(b"echo:").await;
                let _ = c.write_all(&buf[..n]).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn websocket_port_forward_two_ports() {
    let (s, _) = server().await;
    let (p1, p2) = (echo_server().await, echo_server().await);
    let url = s
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: "pod".into(),
            port: vec![i32::from(p1), i32::from(p2)],
        })
        .expect("url")
        .url;
    let (mut ws, proto) = ws_connect(&url, "v4.channel.k8s.io").await;
    assert_eq!(proto, "v4.channel.k8s.io");
    ws.send(bin(0, b"one")).await.expect("send");
    ws.send(bin(2, b"two")).await.expect("send");
    let mut ch = ws_drain(&mut ws).await;
    for (i, p) in [(0usize, p1), (1, p2)] {
        assert_eq!(
            &ch[2 * i][..2],
            &p.to_le_bytes(),
            "data channel opens with the port"
        );
        assert_eq!(
            &ch[2 * i + 1][..],
            &p.to_le_bytes(),
            "error channel: port, no error"
        );
    }
    assert_eq!(&ch[0].split_off(2), b"echo:one");
    assert_eq!(&ch[2].split_off(2), b"echo:two");
}

// ---- SPDY client ----

/// Upgrade a TCP connection to SPDY/3.1 by hand; the status line and the session.
async fn spdy_connect(url: &str, protocol: &str) -> (String, Option<Session>) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut tcp = TcpStream::connect(host).await.expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut b).await.expect("read") == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.lines().next().unwrap_or("").to_string();
    if !status.contains(" 101 ") {
        return (head, None);
    }
    (status, Some(Session::start(tcp, Role::Client)))
}

fn hdr(kind: &str) -> Vec<(String, String)> {
    vec![("streamtype".to_string(), kind.to_string())]
}

async fn read_all(s: &mut Stream) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = s.recv().await {
        v.extend_from_slice(&b);
    }
    v
}

#[tokio::test]
async fn spdy_exec_with_stdin_and_exit_status() {
    let (s, _) = server().await;
    let url = s
        .exec(exec_req(
            &["sh", "-c", "cat; echo err >&2; exit 5"],
            true,
            false,
        ))
        .expect("url")
        .url;
    let (line, sess) = spdy_connect(&url, "v4.channel.k8s.io").await;
    let sess = sess.unwrap_or_else(|| panic!("{line}"));
    // client-go's order: error first, then the others.
    let mut error = sess.open(hdr("error")).await.expect("open");
    let stdin = sess.open(hdr("stdin")).await.expect("open");
    let mut stdout = sess.open(hdr("stdout")).await.expect("open");
    let mut stderr = sess.open(hdr("stderr")).await.expect("open");
    stdin
        .writer()
        .write(b"from spdy stdin\n")
        .await
        .expect("write");
    stdin.writer().close().await.expect("fin");
    let (out, err, st) = tokio::join!(
        read_all(&mut stdout),
        read_all(&mut stderr),
        read_all(&mut error)
    );
    assert_eq!(out, b"from spdy stdin\n");
    assert_eq!(err, b"err\n");
    let st = status(&st);
    assert_eq!(st["details"]["causes"][0]["message"], "5");
}

#[tokio::test]
async fn spdy_tty_resize_and_port_forward() {
    let (s, _) = server().await;
    let url = s
        .exec(exec_req(&["stty", "size"], true, true))
        .expect("url")
        .url;
    let (line, sess) = spdy_connect(&url, "v4.channel.k8s.io").await;
    let sess = sess.unwrap_or_else(|| panic!("{line}"));
    let mut error = sess.open(hdr("error")).await.expect("open");
    let _stdin = sess.open(hdr("stdin")).await.expect("open");
    let mut stdout = sess.open(hdr("stdout")).await.expect("open");
    let resize = sess.open(hdr("resize")).await.expect("open");
    resize
        .writer()
        .write(br#"{"Width":77,"Height":22}"#)
        .await
        .expect("resize");
    let out = read_all(&mut stdout).await;
    assert!(
        String::from_utf8_lossy(&out).contains("22 77"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(status(&read_all(&mut error).await)["status"], "Success");

    let port = echo_server().await;
    let url = s
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: "pod".into(),
            port: vec![i32::from(port)],
        })
        .expect("url")
        .url;
    let (line, sess) = spdy_connect(&url, "portforward.k8s.io").await;
    let sess = sess.unwrap_or_else(|| panic!("{line}"));
    // Two connections over one session, as kubectl does for two local connections.
    for id in 0..2 {
        let pf = |kind: &str| {
            vec![
                ("streamtype".to_string(), kind.to_string()),
                ("port".to_string(), port.to_string()),
                ("requestID".to_string(), id.to_string()),
            ]
        };
        let mut err = sess.open(pf("error")).await.expect("open");
        let mut data = sess.open(pf("data")).await.expect("open");
        data.writer()
            .write(format!("req{id}").as_bytes())
            .await
            .expect("write");
        assert_eq!(
            read_all(&mut data).await,
            format!("echo:req{id}").as_bytes()
        );
        assert_eq!(read_all(&mut err).await, b"");
    }
}

// ---- tokens and refusals ----

async fn http_status(url: &str, extra: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = TcpStream::connect(host).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp).await;
    resp.lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn bad_reused_and_mismatched_tokens_are_refused_and_nothing_runs() {
    let (s, rt) = server().await;
    let url = s.exec(exec_req(&["true"], false, false)).expect("url").url;
    let base = format!("http://{}", s.addr());
    assert!(http_status(&format!("{base}/exec/not-a-token"), "")
        .await
        .contains(" 404 "));
    // Right token, wrong kind of request.
    let as_attach = url.replace("/exec/", "/attach/");
    assert!(http_status(&as_attach, "").await.contains(" 404 "));
    // The token was spent by that attempt: the real URL is dead now too.
    assert!(http_status(&url, "").await.contains(" 404 "));

    // No upgrade: 400. A protocol we don't speak: 403.
    let url = s.exec(exec_req(&["true"], false, false)).expect("url").url;
    assert!(http_status(&url, "").await.contains(" 400 "));
    let url = s.exec(exec_req(&["true"], false, false)).expect("url").url;
    let (line, sess) = spdy_connect(&url, "v9.channel.k8s.io").await;
    assert!(sess.is_none() && line.contains(" 403 "), "{line}");

    // A used token: the second WebSocket is refused.
    let url = s.exec(exec_req(&["true"], false, false)).expect("url").url;
    let (mut ws, _) = ws_connect(&url, "v4.channel.k8s.io").await;
    let _ = ws_drain(&mut ws).await;
    let mut req = url
        .replace("http://", "ws://")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("reused token");
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(
        rt.started.load(Ordering::SeqCst),
        1,
        "only the one good session ran"
    );

    // Expired tokens.
    let short = StreamingServer::start(
        Config {
            token_ttl: Duration::from_millis(50),
            ..Config::default()
        },
        rt.clone(),
    )
    .await
    .expect("start");
    let url = short
        .exec(exec_req(&["true"], false, false))
        .expect("url")
        .url;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http_status(&url, "").await.contains(" 404 "));
    assert_eq!(rt.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalid_requests_get_no_url() {
    let (s, _) = server().await;
    let mut r = exec_req(&["sh"], false, true);
    r.stderr = true;
    assert_eq!(
        s.exec(r).expect_err("tty+stderr").code(),
        crius_proto::tonic::Code::InvalidArgument
    );
    assert!(s.exec(exec_req(&[], false, false)).is_err());
    assert!(s
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: "p".into(),
            port: vec![70000]
        })
        .is_err());
    assert!(s
        .attach(cri::AttachRequest {
            container_id: "c".into(),
            ..Default::default()
        })
        .is_err());
}

#[tokio::test]
async fn runtime_errors_reach_the_client_as_a_failure_status() {
    let (s, _) = server().await;
    let mut r = exec_req(&["true"], false, false);
    r.container_id = "missing".into();
    let url = s.exec(r).expect("url").url;
    let (mut ws, _) = ws_connect(&url, "v4.channel.k8s.io").await;
    let ch = ws_drain(&mut ws).await;
    let st = status(&ch[3]);
    assert_eq!(st["status"], "Failure");
    assert!(
        st["message"]
            .as_str()
            .is_some_and(|m| m.contains("not found")),
        "{st}"
    );
}
