//! Lets gRPC clients that send the socket path as HTTP/2 `:authority` talk to criusd.
//!
//! grpc-go dialled with a bare path (crictl, older kubelets, `grpcurl -unix`), grpc-java and
//! grpc-python over unix sockets send `:authority: /run/crius/crius.sock`. That is not a valid
//! authority, and h2 (under tonic) resets every such stream with PROTOCOL_ERROR, with no option
//! to relax it (hyperium/h2#487 is unmerged). containerd and CRI-O accept these clients, so
//! criusd must too.
//!
//! The fix sits between the socket and tonic and edits only the client's header blocks, without
//! decoding them: the HPACK representation "literal with incremental indexing, name = static
//! entry 1 (`:authority`)" becomes the same representation with static entry 58 (`user-agent`).
//! Both names are 10 bytes long, so the encoded size and the dynamic table's accounting stay
//! exactly as the client computed them, and later indexed references stay in step. The same
//! field sent without indexing is dropped (it touches no table). criusd reads neither header.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use crius_proto::tonic::transport::server::Connected;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Static table: 1 is `:authority`, 58 is `user-agent` (RFC 7541 appendix A).
const AUTHORITY: u64 = 1;
const USER_AGENT: u8 = 58;
/// A header block larger than this is passed on untouched (h2 refuses it anyway).
const MAX_BLOCK: usize = 1 << 20;

/// A connection whose client → server bytes get the `:authority` fix.
pub struct AuthorityFix<S> {
    inner: S,
    /// Bytes read from the client, not yet sorted into frames.
    input: BytesMut,
    /// Bytes ready for the server.
    output: BytesMut,
    state: State,
    /// Frames of a header block waiting for END_HEADERS.
    block: Vec<u8>,
    eof: bool,
}

enum State {
    /// Checking the connection preface.
    Preface,
    /// At a frame boundary.
    Frame,
    /// Inside a frame that passes through: this many payload bytes remain.
    Payload(usize),
    /// Not HTTP/2 with prior knowledge, or a block too big: everything passes through.
    Passthrough,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            input: BytesMut::new(),
            output: BytesMut::new(),
            state: State::Preface,
            block: Vec::new(),
            eof: false,
        }
    }

    /// Move what can be decided from `input` to `output`.
    fn process(&mut self) {
        loop {
            match self.state {
                State::Passthrough => {
                    let all = self.input.split();
                    self.output.extend_from_slice(&all);
                    return;
                }
                State::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input[..n] != PREFACE[..n] {
                        self.state = State::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return;
                    }
                    let p = self.input.split_to(PREFACE.len());
                    self.output.extend_from_slice(&p);
                    self.state = State::Frame;
                }
                State::Payload(left) => {
                    let n = left.min(self.input.len());
                    let p = self.input.split_to(n);
                    self.output.extend_from_slice(&p);
                    if n < left {
                        self.state = State::Payload(left - n);
                        return;
                    }
                    self.state = State::Frame;
                }
                State::Frame => {
                    if self.input.len() < FRAME_HEADER {
                        return;
                    }
                    let len = u32::from_be_bytes([0, self.input[0], self.input[1], self.input[2]])
                        as usize;
                    let kind = self.input[3];
                    let in_block = !self.block.is_empty();
                    if kind != HEADERS && !(in_block && kind == CONTINUATION) {
                        if in_block {
                            // Not a valid sequence: let h2 see it as it is and say so.
                            let b = std::mem::take(&mut self.block);
                            self.output.extend_from_slice(&b);
                        }
                        let h = self.input.split_to(FRAME_HEADER);
                        self.output.extend_from_slice(&h);
                        self.state = State::Payload(len);
                        continue;
                    }
                    if self.block.len() + FRAME_HEADER + len > MAX_BLOCK {
                        let b = std::mem::take(&mut self.block);
                        self.output.extend_from_slice(&b);
                        self.state = State::Passthrough;
                        continue;
                    }
                    if self.input.len() < FRAME_HEADER + len {
                        return;
                    }
                    let flags = self.input[4];
                    let frame = self.input.split_to(FRAME_HEADER + len);
                    self.block.extend_from_slice(&frame);
                    if flags & END_HEADERS != 0 {
                        let mut b = std::mem::take(&mut self.block);
                        fix_block(&mut b);
                        self.output.extend_from_slice(&b);
                    }
                }
            }
        }
    }
}

/// Rewrite the `:authority` fields of one header block: `frames` are a HEADERS frame and its
/// CONTINUATIONs, whole. Malformed input is left for h2 to reject.
fn fix_block(frames: &mut Vec<u8>) {
    // Where each frame's fragment lies in `frames`.
    let mut spans = Vec::new();
    let mut at = 0;
    while at + FRAME_HEADER <= frames.len() {
        let len = u32::from_be_bytes([0, frames[at], frames[at + 1], frames[at + 2]]) as usize;
        let (kind, flags) = (frames[at + 3], frames[at + 4]);
        let payload = at + FRAME_HEADER;
        let end = payload + len;
        if end > frames.len() {
            return;
        }
        let (mut start, mut stop) = (payload, end);
        if kind == HEADERS {
            if flags & PADDED != 0 {
                let Some(&pad) = frames.get(payload) else {
                    return;
                };
                start += 1;
                stop = match stop.checked_sub(pad as usize) {
                    Some(s) => s,
                    None => return,
                };
            }
            if flags & PRIORITY != 0 {
                start += 5;
            }
        }
        if start > stop {
            return;
        }
        spans.push((at, start, stop));
        at = end;
    }
    let mut fragment: Vec<u8> = spans
        .iter()
        .flat_map(|&(_, s, e)| frames[s..e].to_vec())
        .collect();
    let edits = rewrite(&mut fragment);
    if edits.is_empty() {
        return;
    }
    if spans.len() == 1 {
        // Dropped fields shrink the one frame: rebuild it.
        let (at, start, stop) = spans[0];
        let mut out = Vec::with_capacity(frames.len());
        out.extend_from_slice(&frames[at..at + FRAME_HEADER]);
        out.extend_from_slice(&frames[at + FRAME_HEADER..start]);
        out.extend_from_slice(&fragment);
        out.extend_from_slice(&frames[stop..]);
        let len = (out.len() - FRAME_HEADER) as u32;
        out[..3].copy_from_slice(&len.to_be_bytes()[1..]);
        *frames = out;
        return;
    }
    // Several frames: only same-size edits can be put back in place.
    let total: usize = spans.iter().map(|&(_, s, e)| e - s).sum();
    if fragment.len() != total {
        return;
    }
    let mut src = &fragment[..];
    for &(_, s, e) in &spans {
        frames[s..e].copy_from_slice(&src[..e - s]);
        src.advance(e - s);
    }
}

/// One edit made to a header block fragment.
#[derive(Debug, PartialEq)]
enum Edit {
    Renamed,
    Dropped,
}

/// Walk the HPACK representations of `block` and fix each `:authority` by static index.
fn rewrite(block: &mut Vec<u8>) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let b = block[i];
        let start = i;
        if b & 0x80 != 0 {
            // Indexed field.
            if int(block, &mut i, 7).is_none() {
                return edits;
            }
            continue;
        }
        if b & 0xE0 == 0x20 {
            // Dynamic table size update.
            if int(block, &mut i, 5).is_none() {
                return edits;
            }
            continue;
        }
        let incremental = b & 0xC0 == 0x40;
        let prefix = if incremental { 6 } else { 4 };
        let Some(name) = int(block, &mut i, prefix) else {
            return edits;
        };
        if name == 0 && skip_string(block, &mut i).is_none() {
            return edits;
        }
        if skip_string(block, &mut i).is_none() {
            return edits;
        }
        if name != AUTHORITY {
            continue;
        }
        if incremental {
            // 0x41 → 0x7a: one byte either way.
            block[start] = 0x40 | USER_AGENT;
            edits.push(Edit::Renamed);
        } else {
            block.drain(start..i);
            i = start;
            edits.push(Edit::Dropped);
        }
    }
    edits
}

/// An HPACK integer with an `n`-bit prefix at `*i` (RFC 7541 5.1).
fn int(b: &[u8], i: &mut usize, n: u32) -> Option<u64> {
    let max = (1u64 << n) - 1;
    let mut v = u64::from(*b.get(*i)?) & max;
    *i += 1;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v = v.checked_add(u64::from(byte & 0x7f).checked_shl(shift)?)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 56 {
            return None;
        }
    }
}

/// Skip a string literal (Huffman or not) at `*i`.
fn skip_string(b: &[u8], i: &mut usize) -> Option<()> {
    let len = int(b, i, 7)? as usize;
    let end = i.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    *i = end;
    Some(())
}

impl Connected for AuthorityFix<UnixStream> {
    type ConnectInfo = <UnixStream as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Whatever is left undecided goes through as it is.
                let rest = this.input.split();
                let block = std::mem::take(&mut this.block);
                this.output.extend_from_slice(&block);
                this.output.extend_from_slice(&rest);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 16 << 10];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.input.extend_from_slice(rb.filled());
                        this.process();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// `:authority` (static 1) with a raw value, indexed: what grpc-go sends first.
    fn authority_literal(value: &[u8]) -> Vec<u8> {
        let mut v = vec![0x41, value.len() as u8];
        v.extend_from_slice(value);
        v
    }

    async fn through(bytes: Vec<u8>, chunk: usize) -> Vec<u8> {
        // Feed in small pieces to exercise every partial state.
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for c in bytes.chunks(chunk) {
                a.write_all(c).await.expect("write");
            }
        });
        let mut fix = AuthorityFix::new(b);
        let mut out = Vec::new();
        writer.await.expect("writer");
        fix.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn renames_the_indexed_authority_and_keeps_everything_else() {
        let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
        block.extend(authority_literal(b"/run/crius/crius.sock"));
        block.extend([0x44, 0x01, b'/']); // :path "/" (incremental, static 4)
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));
        input.extend(frame(0x0, 0x1, 1, b"grpc body"));
        for chunk in [1, 3, 7, 4096] {
            let out = through(input.clone(), chunk).await;
            assert_eq!(out.len(), input.len());
            let mut want = input.clone();
            let at = PREFACE.len() + 9 + 9 + 2;
            assert_eq!(want[at], 0x41);
            want[at] = 0x7a;
            assert_eq!(out, want, "chunk {chunk}");
        }
    }

    #[test]
    fn drops_the_unindexed_authority_and_shrinks_the_frame() {
        let mut block = vec![0x83];
        block.extend([0x01, 3, b'/', b'a', b'b']); // without indexing, static 1
        block.push(0x86);
        let mut f = frame(HEADERS, END_HEADERS, 1, &block);
        fix_block(&mut f);
        assert_eq!(f, frame(HEADERS, END_HEADERS, 1, &[0x83, 0x86]));
    }

    #[test]
    fn padding_and_priority_are_respected() {
        let mut payload = vec![2]; // pad length
        payload.extend([0, 0, 0, 0, 16]); // priority
        payload.extend(authority_literal(b"/s"));
        payload.extend([0, 0]); // padding
        let mut f = frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, &payload);
        let before = f.clone();
        fix_block(&mut f);
        let at = 9 + 1 + 5;
        assert_eq!(before[at], 0x41);
        assert_eq!(f[at], 0x7a);
        assert_eq!(f.len(), before.len());
    }

    #[test]
    fn a_field_split_over_continuation_frames_is_fixed_in_place() {
        let lit = authority_literal(b"/run/x.sock");
        let (a, b) = lit.split_at(4);
        let mut frames = frame(HEADERS, 0, 1, &[&[0x83][..], a].concat());
        frames.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        fix_block(&mut frames);
        assert_eq!(frames[9 + 1], 0x7a);
    }

    #[test]
    fn other_fields_and_huffman_values_are_untouched() {
        // Literal name "x" with a Huffman value; an indexed field; a name index over two bytes
        // (64) with an empty value.
        let mut block = vec![0x40, 0x01, b'x', 0x82, 0xff, 0xff, 0xbf, 0x7f, 0x01, 0x00];
        let before = block.clone();
        assert!(rewrite(&mut block).is_empty());
        assert_eq!(block, before);
    }

    #[tokio::test]
    async fn not_http2_passes_through() {
        let input = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(through(input.clone(), 5).await, input);
    }
}
