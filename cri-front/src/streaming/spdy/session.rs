//! A SPDY/3.1 connection: streams multiplexed over one socket, either side may be the server.
//!
//! One task reads and routes frames (answering SYN_STREAM with SYN_REPLY on the server side and
//! echoing the peer's PINGs), one task owns the socket's write half and the compressor. Flow control
//! is not enforced: the Go peers kubelet and client-go use (spdystream) do not enforce it either;
//! data channels are bounded, so a stream nobody reads holds the connection back instead of
//! growing memory.

use super::frame::{Decoder, Encoder, Frame, Headers, FLAG_FIN};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Which end of the connection we are: servers open even streams, clients odd ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

type Routes = Arc<Mutex<HashMap<u32, mpsc::Sender<Bytes>>>>;

/// What the writer task is told.
enum Out {
    Frame(Frame),
    /// Send what is queued, then close the socket.
    Close,
}

/// A stream's receiving side: data until the peer's FIN (or reset, or the connection's end).
pub struct Stream {
    pub id: u32,
    /// Headers of the SYN_STREAM (for streams the peer opened).
    pub headers: Headers,
    rx: mpsc::Receiver<Bytes>,
    writer: StreamWriter,
}

impl Stream {
    /// The next chunk of data; None at the end of the stream.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    pub fn writer(&self) -> StreamWriter {
        self.writer.clone()
    }

    /// The value of a header of the stream.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::frame::header(&self.headers, name)
    }
}

/// A stream's sending side.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "SPDY connection closed")
}

impl StreamWriter {
    pub async fn write(&self, data: &[u8]) -> std::io::Result<()> {
        // Frames carry at most 24 bits of length; stay well below.
        for chunk in data.chunks(32 * 1024) {
            self.out
                .send(Out::Frame(Frame::Data {
                    stream_id: self.id,
                    flags: 0,
                    data: Bytes::copy_from_slice(chunk),
                }))
                .await
                .map_err(|_| gone())?;
        }
        Ok(())
    }

    /// Half-close: no more data from us on this stream.
    pub async fn close(&self) -> std::io::Result<()> {
        self.out
            .send(Out::Frame(Frame::Data {
                stream_id: self.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            }))
            .await
            .map_err(|_| gone())
    }
}

/// One connection.
pub struct Session {
    out: mpsc::Sender<Out>,
    incoming: mpsc::Receiver<Stream>,
    routes: Routes,
    next_id: AtomicU32,
    reader: tokio::task::AbortHandle,
}

impl Session {
    /// Run the protocol on `io` (after the HTTP upgrade).
    pub fn start<S>(io: S, role: Role) -> Session
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel::<Out>(64);
        let (in_tx, in_rx) = mpsc::channel::<Stream>(16);
        let routes: Routes = Arc::default();
        tokio::spawn(write_loop(wr, out_rx));
        let reader =
            tokio::spawn(read_loop(rd, role, routes.clone(), out_tx.clone(), in_tx)).abort_handle();
        Session {
            out: out_tx,
            incoming: in_rx,
            routes,
            next_id: AtomicU32::new(if role == Role::Client { 1 } else { 2 }),
            reader,
        }
    }

    /// The next stream the peer opened; None once the connection is gone.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }

    /// Open a stream with `headers` (client side of kubelet's protocols).
    pub async fn open(&self, headers: Headers) -> std::io::Result<Stream> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(64);
        if let Ok(mut r) = self.routes.lock() {
            r.insert(id, tx);
        }
        self.out
            .send(Out::Frame(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: headers.clone(),
            }))
            .await
            .map_err(|_| gone())?;
        Ok(Stream {
            id,
            headers,
            rx,
            writer: StreamWriter {
                id,
                out: self.out.clone(),
            },
        })
    }

    /// Send what is queued, then close the connection (the peer sees every stream end).
    pub async fn close(&self) {
        let _ = self.out.send(Out::Close).await;
        // The peer normally hangs up at once; one that does not loses its socket a little later.
        let reader = self.reader.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            reader.abort();
        });
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Out>) {
    let mut enc = Encoder::new();
    let mut buf = BytesMut::new();
    let mut closing = false;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Batch what is already queued into one write.
        while let Some(o) = next.take() {
            match o {
                Out::Frame(f) => {
                    if let Err(e) = enc.encode(&f, &mut buf) {
                        tracing::warn!(error = %e, "SPDY: cannot encode a frame; closing");
                        closing = true;
                    }
                }
                Out::Close => closing = true,
            }
            if !closing {
                next = rx.try_recv().ok();
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
        buf.clear();
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    role: Role,
    routes: Routes,
    out: mpsc::Sender<Out>,
    incoming: mpsc::Sender<Stream>,
) {
    let send = |f: Frame| {
        let out = out.clone();
        async move {
            let _ = out.send(Out::Frame(f)).await;
        }
    };
    let mut dec = Decoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'conn: loop {
        loop {
            let f = match dec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "SPDY: bad frame; closing the connection");
                    break 'conn;
                }
            };
            match f {
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                    ..
                } => {
                    let (tx, rx) = mpsc::channel(64);
                    if flags & FLAG_FIN == 0 {
                        if let Ok(mut r) = routes.lock() {
                            r.insert(stream_id, tx);
                        }
                    }
                    if role == Role::Server {
                        send(Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers: Vec::new(),
                        })
                        .await;
                    }
                    let s = Stream {
                        id: stream_id,
                        headers,
                        rx,
                        writer: StreamWriter {
                            id: stream_id,
                            out: out.clone(),
                        },
                    };
                    if incoming.send(s).await.is_err() {
                        // Nobody takes new streams any more: refuse it.
                        send(Frame::RstStream {
                            stream_id,
                            status: 3,
                        })
                        .await;
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    let tx = routes.lock().ok().and_then(|r| r.get(&stream_id).cloned());
                    if let Some(tx) = tx {
                        if !data.is_empty() {
                            let _ = tx.send(data).await;
                        }
                    }
                    if flags & FLAG_FIN != 0 {
                        if let Ok(mut r) = routes.lock() {
                            r.remove(&stream_id);
                        }
                    }
                }
                Frame::SynReply {
                    stream_id, flags, ..
                }
                | Frame::Headers {
                    stream_id, flags, ..
                } => {
                    if flags & FLAG_FIN != 0 {
                        if let Ok(mut r) = routes.lock() {
                            r.remove(&stream_id);
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    if let Ok(mut r) = routes.lock() {
                        r.remove(&stream_id);
                    }
                }
                Frame::Ping { id } => {
                    // Answer the peer's pings (odd ids come from clients), not our own echoes.
                    let peers = (id % 2 == 1) == (role == Role::Server);
                    if peers {
                        send(Frame::Ping { id }).await;
                    }
                }
                Frame::GoAway { .. } => break 'conn,
                Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {}
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Every stream sees its end; no more streams will come.
    if let Ok(mut r) = routes.lock() {
        r.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &str, v: &str) -> Headers {
        vec![(k.to_string(), v.to_string())]
    }

    #[tokio::test]
    async fn client_and_server_exchange_data_on_streams() {
        let (a, b) = tokio::io::duplex(1024);
        let client = Session::start(a, Role::Client);
        let mut server = Session::start(b, Role::Server);
        let mut s1 = client.open(h("streamtype", "stdin")).await.expect("open");
        let mut s2 = client.open(h("streamtype", "stdout")).await.expect("open");
        assert_eq!((s1.id, s2.id), (1, 3));
        let mut in1 = server.accept().await.expect("stream 1");
        let in2 = server.accept().await.expect("stream 3");
        assert_eq!(in1.header("streamtype"), Some("stdin"));
        assert_eq!(in2.header("StreamType"), Some("stdout"));
        // Big enough to be split into several frames.
        let big = vec![7u8; 100_000];
        s1.writer().write(&big).await.expect("write");
        s1.writer().close().await.expect("fin");
        let mut got = Vec::new();
        while let Some(b) = in1.recv().await {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, big);
        in2.writer().write(b"out").await.expect("write");
        in2.writer().close().await.expect("fin");
        assert_eq!(s2.recv().await.as_deref(), Some(&b"out"[..]));
        assert_eq!(s2.recv().await, None);
        // The server's side ends: the client's streams end too.
        server.close().await;
        assert_eq!(s1.recv().await, None);
        drop(in1);
    }
}
