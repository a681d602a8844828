//! Lets gRPC clients that send the socket path as HTTP/2 `:authority` talk to criusd.
//!
//! grpc-go dialled with a bare path (crictl, older kubelets, `grpcurl -unix`) and grpc-java
//! over unix sockets send `:authority: /run/crius/crius.sock`; grpc-core (Python's grpcio, C++,
//! Ruby, PHP) sends the path percent-encoded, `run%2Fcrius%2Fcrius.sock`, under a literal
//! `:authority` name. Neither is a valid authority, and h2 (under tonic) resets every such
//! stream with PROTOCOL_ERROR, with no option to relax it (hyperium/h2#487 is unmerged).
//! containerd and CRI-O accept these clients, so criusd must too.
//!
//! The fix sits between the socket and tonic and edits only the client's header blocks: in an
//! `:authority` literal (name by static index 1, or the name spelled out) that h2 would refuse,
//! each `/` and `%` becomes `-`. All three have 6-bit Huffman codes, so the string keeps its
//! encoded (and decoded) length whether Huffman-coded or not: frame
//! sizes, the field order and the dynamic table's accounting stay exactly as the client computed
//! them, and later indexed references to the entry stay in step. criusd never reads the value.
//! Valid authorities (tonic's, current kubelet's `localhost`) are not touched.

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
/// Static table entry 1 is `:authority` (RFC 7541 appendix A).
const AUTHORITY: u64 = 1;
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

/// Fix the `:authority` fields of one header block: `frames` are a HEADERS frame and its
/// CONTINUATIONs, whole. Malformed input is left for h2 to reject.
fn fix_block(frames: &mut [u8]) {
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
    if rewrite(&mut fragment) == 0 {
        return;
    }
    // Edits keep lengths: the fragment goes back where it came from.
    let mut src = &fragment[..];
    for &(_, s, e) in &spans {
        frames[s..e].copy_from_slice(&src[..e - s]);
        src.advance(e - s);
    }
}

/// Walk the HPACK representations of `block` and fix each refused `:authority` value in place;
/// returns how many were fixed.
fn rewrite(block: &mut [u8]) -> usize {
    let mut fixed = 0;
    let mut i = 0;
    while i < block.len() {
        let b = block[i];
        if b & 0x80 != 0 {
            // Indexed field.
            if int(block, &mut i, 7).is_none() {
                return fixed;
            }
            continue;
        }
        if b & 0xE0 == 0x20 {
            // Dynamic table size update.
            if int(block, &mut i, 5).is_none() {
                return fixed;
            }
            continue;
        }
        // A literal: 6-bit name index with incremental indexing, else 4-bit.
        let prefix = if b & 0xC0 == 0x40 { 6 } else { 4 };
        let Some(name) = int(block, &mut i, prefix) else {
            return fixed;
        };
        let mut is_authority = name == AUTHORITY;
        if name == 0 {
            let Some((huffman, n)) = string(block, &mut i) else {
                return fixed;
            };
            is_authority = decoded(&block[n], huffman).as_deref() == Some(b":authority");
        }
        let Some((huffman, value)) = string(block, &mut i) else {
            return fixed;
        };
        if is_authority && fix_value(&mut block[value], huffman) {
            fixed += 1;
        }
    }
    fixed
}

/// Make an `:authority` value h2 accepts, at the same encoded length; false when it already was
/// valid or cannot be fixed (h2 then refuses it as before).
fn fix_value(encoded: &mut [u8], huffman: bool) -> bool {
    let Some(mut raw) = decoded(encoded, huffman) else {
        return false;
    };
    if valid_authority(&raw) {
        return false;
    }
    for c in raw.iter_mut().filter(|c| **c == b'/' || **c == b'%') {
        *c = b'-';
    }
    if !valid_authority(&raw) {
        return false;
    }
    let out = if huffman {
        let mut out = Vec::new();
        if httlib_huffman::encode(&raw, &mut out).is_err() {
            return false;
        }
        out
    } else {
        raw
    };
    if out.len() != encoded.len() {
        return false;
    }
    encoded.copy_from_slice(&out);
    true
}

/// A string literal's bytes, Huffman-decoded when it is coded; None when it does not decode.
fn decoded(encoded: &[u8], huffman: bool) -> Option<Vec<u8>> {
    if !huffman {
        return Some(encoded.to_vec());
    }
    let mut raw = Vec::new();
    httlib_huffman::decode(encoded, &mut raw, httlib_huffman::DecoderSpeed::FourBits).ok()?;
    Some(raw)
}

/// What h2 requires of `:authority`.
fn valid_authority(v: &[u8]) -> bool {
    http::uri::Authority::try_from(v).is_ok()
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

/// A string literal at `*i`: whether it is Huffman-coded, and where its bytes are.
fn string(b: &[u8], i: &mut usize) -> Option<(bool, std::ops::Range<usize>)> {
    let huffman = *b.get(*i)? & 0x80 != 0;
    let len = int(b, i, 7)? as usize;
    let start = *i;
    let end = start.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    *i = end;
    Some((huffman, start..end))
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

    /// `:authority` (static 1) as a literal: `first` is the representation byte (0x41 with
    /// incremental indexing, 0x01 without), the value raw or Huffman-coded.
    fn authority(first: u8, value: &[u8], huffman: bool) -> Vec<u8> {
        let mut v = vec![first];
        if huffman {
            let mut h = Vec::new();
            httlib_huffman::encode(value, &mut h).expect("huffman");
            v.push(0x80 | h.len() as u8);
            v.extend(h);
        } else {
            v.push(value.len() as u8);
            v.extend_from_slice(value);
        }
        v
    }

    /// The `:authority` value the server will decode from `block` (first such literal).
    fn decoded_authority(block: &[u8]) -> Vec<u8> {
        let at = block
            .iter()
            .position(|&b| b == 0x41 || b == 0x01)
            .expect("literal");
        let mut i = at;
        int(block, &mut i, if block[at] == 0x41 { 6 } else { 4 }).expect("name");
        let (huffman, r) = string(block, &mut i).expect("value");
        if huffman {
            let mut out = Vec::new();
            httlib_huffman::decode(&block[r], &mut out, httlib_huffman::DecoderSpeed::FourBits)
                .expect("decode");
            out
        } else {
            block[r].to_vec()
        }
    }

    async fn through(bytes: Vec<u8>, chunk: usize) -> Vec<u8> {
        // Fed in small pieces to exercise every partial state.
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
    async fn a_socket_path_authority_is_fixed_and_nothing_else_moves() {
        let path = b"/run/crius/crius.sock";
        for huffman in [false, true] {
            let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
            block.extend(authority(0x41, path, huffman));
            block.extend([0x44, 0x01, b'/']); // :path "/"
            let mut input = PREFACE.to_vec();
            input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
            input.extend(frame(HEADERS, END_HEADERS, 1, &block));
            input.extend(frame(0x0, 0x1, 1, b"grpc body"));
            for chunk in [1, 3, 7, 4096] {
                let out = through(input.clone(), chunk).await;
                assert_eq!(out.len(), input.len(), "huffman {huffman} chunk {chunk}");
                let at = PREFACE.len() + 2 * FRAME_HEADER;
                let got = &out[at..at + block.len()];
                assert_eq!(decoded_authority(got), b"-run-crius-crius.sock");
                // Everything but the value is byte for byte the same.
                let same = |x: &[u8]| x[..at + 4].to_vec();
                assert_eq!(same(&out), same(&input));
                assert_eq!(out[at + block.len() - 3..], input[at + block.len() - 3..]);
            }
        }
    }

    #[test]
    fn valid_authorities_are_left_alone() {
        for v in [&b"localhost"[..], b"[::]:50051", b"127.0.0.1:10010"] {
            for huffman in [false, true] {
                let mut block = authority(0x41, v, huffman);
                let before = block.clone();
                assert_eq!(rewrite(&mut block), 0);
                assert_eq!(block, before);
            }
        }
    }

    #[test]
    fn unindexed_padded_and_prioritised_forms_are_fixed() {
        let mut payload = vec![2]; // pad length
        payload.extend([0, 0, 0, 0, 16]); // priority
        let lit = authority(0x01, b"/s.sock", true);
        payload.extend(&lit);
        payload.extend([0, 0]); // padding
        let mut f = frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, &payload);
        let len = f.len();
        fix_block(&mut f);
        assert_eq!(f.len(), len);
        let at = FRAME_HEADER + 1 + 5;
        assert_eq!(decoded_authority(&f[at..at + lit.len()]), b"-s.sock");
    }

    #[test]
    fn a_field_split_over_continuation_frames_is_fixed_in_place() {
        let lit = authority(0x41, b"/run/x.sock", false);
        let (a, b) = lit.split_at(4);
        let mut frames = frame(HEADERS, 0, 1, &[&[0x83][..], a].concat());
        frames.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        fix_block(&mut frames);
        let block: Vec<u8> = [
            &frames[FRAME_HEADER + 1..FRAME_HEADER + 5],
            &frames[2 * FRAME_HEADER + 5..],
        ]
        .concat();
        assert_eq!(decoded_authority(&block), b"-run-x.sock");
    }

    #[test]
    fn grpc_core_percent_encoded_path_under_a_literal_name_is_fixed() {
        for huffman in [false, true] {
            // grpc-core: literal with incremental indexing, new name ":authority".
            let mut block = vec![0x40];
            block.extend(string_lit(b":authority", huffman));
            block.extend(string_lit(b"run%2Fcrius%2Fcrius.sock", huffman));
            let len = block.len();
            assert_eq!(rewrite(&mut block), 1, "huffman {huffman}");
            assert_eq!(block.len(), len);
            let mut i = 1;
            string(&block, &mut i).expect("name");
            let (h, r) = string(&block, &mut i).expect("value");
            assert_eq!(
                decoded(&block[r], h).expect("decode"),
                b"run-2Fcrius-2Fcrius.sock"
            );
        }
        // Another literal name with the same value is not touched.
        let mut block = vec![0x40];
        block.extend(string_lit(b"x-authority", false));
        block.extend(string_lit(b"run%2Fx", false));
        assert_eq!(rewrite(&mut block), 0);
    }

    fn string_lit(s: &[u8], huffman: bool) -> Vec<u8> {
        let mut v = authority(0, s, huffman);
        v.remove(0);
        v
    }

    #[test]
    fn other_fields_are_untouched() {
        // Literal name "x" with a Huffman value; an indexed field; a name index over two bytes
        // (64) with an empty value.
        let mut block = vec![0x40, 0x01, b'x', 0x82, 0xff, 0xff, 0xbf, 0x7f, 0x01, 0x00];
        let before = block.clone();
        assert_eq!(rewrite(&mut block), 0);
        assert_eq!(block, before);
    }

    #[tokio::test]
    async fn not_http2_passes_through() {
        let input = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(through(input.clone(), 5).await, input);
    }
}
