//! SPDY/3.1 frames: parsing and writing, with the session's zlib header compression.
//!
//! ```text
//! control: |1| version(15)=3 | type(16) | flags(8) | length(24) | payload
//! data:    |0| stream id(31)            | flags(8) | length(24) | payload
//! ```
//! Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are `u32 count` then `u32 len, name, u32 len,
//! value` pairs (several values of one name joined by NUL), compressed with one zlib stream per
//! direction for the whole connection, primed with [`super::dictionary`], sync-flushed per frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Largest header block we inflate (a peer cannot make us allocate more).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Header names (lower case) and values, in order.
pub type Headers = Vec<(String, String)>;

/// The first value of `name`.
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame type this implementation ignores (e.g. CREDENTIAL).
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY version {0} is not supported (want 3)")]
    Version(u16),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("header compression: {0}")]
    Zlib(String),
}

/// Writes frames; owns the sending zlib context.
pub struct Encoder {
    z: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut z = Compress::new(Compression::default(), true);
        // Priming before any input is what makes zlib write FDICT and the dictionary's id.
        let _ = z.set_dictionary(super::dictionary::get());
        Encoder { z }
    }

    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        // Several values of one name travel as one NUL-joined value.
        let mut merged: Vec<(String, String)> = Vec::new();
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            match merged.iter_mut().find(|(n, _)| *n == k) {
                Some((_, val)) => {
                    val.push('\0');
                    val.push_str(v);
                }
                None => merged.push((k, v.clone())),
            }
        }
        let mut raw = Vec::new();
        raw.put_u32(merged.len() as u32);
        for (k, v) in &merged {
            raw.put_u32(k.len() as u32);
            raw.put_slice(k.as_bytes());
            raw.put_u32(v.len() as u32);
            raw.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(1024);
            }
            self.z
                .compress_vec(&raw[done..], &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Zlib(e.to_string()))?;
            // A sync flush is complete once zlib stops short of filling the output.
            if (self.z.total_in() - start) as usize == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Append `f`'s bytes to `out`.
    pub fn encode(&mut self, f: &Frame, out: &mut BytesMut) -> Result<(), FrameError> {
        let control = |out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]| {
            out.put_u16(0x8000 | VERSION);
            out.put_u16(kind);
            out.put_u32((u32::from(flags) << 24) | payload.len() as u32);
            out.put_slice(payload);
        };
        match f {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(associated_to & 0x7fff_ffff);
                p.put_u8((priority & 0x7) << 5);
                p.put_u8(0); // slot
                p.extend(self.header_block(headers)?);
                control(out, SYN_STREAM, *flags, &p);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.extend(self.header_block(headers)?);
                control(out, SYN_REPLY, *flags, &p);
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.extend(self.header_block(headers)?);
                control(out, HEADERS, *flags, &p);
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, RST_STREAM, 0, &p);
            }
            Frame::Settings { flags, entries } => {
                let mut p = Vec::new();
                p.put_u32(entries.len() as u32);
                for (fl, id, v) in entries {
                    p.put_u32((u32::from(*fl) << 24) | (id & 0x00ff_ffff));
                    p.put_u32(*v);
                }
                control(out, SETTINGS, *flags, &p);
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = Vec::new();
                p.put_u32(last_good_stream_id & 0x7fff_ffff);
                p.put_u32(*status);
                control(out, GOAWAY, 0, &p);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = Vec::new();
                p.put_u32(stream_id & 0x7fff_ffff);
                p.put_u32(delta & 0x7fff_ffff);
                control(out, WINDOW_UPDATE, 0, &p);
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::Unknown { .. } => return Err(FrameError::Malformed("unknown")),
        }
        Ok(())
    }
}

/// Reads frames; owns the receiving zlib context.
pub struct Decoder {
    z: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            z: Decompress::new(true),
        }
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let start = self.z.total_in();
        loop {
            let done = (self.z.total_in() - start) as usize;
            if out.capacity() - out.len() < 256 {
                out.reserve(4096);
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::Malformed("oversized header block"));
            }
            match self
                .z
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(super::dictionary::get())
                        .map_err(|e| FrameError::Zlib(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::Zlib(e.to_string())),
            }
            if (self.z.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let raw = self.inflate(block)?;
        let mut b = raw.as_slice();
        let bad = || FrameError::Malformed("header block");
        let take_str = |b: &mut &[u8]| -> Result<String, FrameError> {
            if b.remaining() < 4 {
                return Err(bad());
            }
            let n = b.get_u32() as usize;
            if b.remaining() < n {
                return Err(bad());
            }
            let s = String::from_utf8_lossy(&b[..n]).into_owned();
            b.advance(n);
            Ok(s)
        };
        if b.remaining() < 4 {
            return Err(bad());
        }
        let count = b.get_u32();
        let mut h = Vec::new();
        for _ in 0..count {
            let k = take_str(&mut b)?.to_ascii_lowercase();
            let v = take_str(&mut b)?;
            for part in v.split('\0') {
                h.push((k.clone(), part.to_string()));
            }
        }
        Ok(h)
    }

    /// Take one whole frame off the front of `buf`; `None` until one is complete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let mut head = buf.split_to(8);
        let payload = buf.split_to(len).freeze();
        let first = head.get_u32();
        let flags = head.get_u8();
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: first & 0x7fff_ffff,
                flags,
                data: payload,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = (first & 0xffff) as u16;
        let mut p = payload;
        let need = |p: &Bytes, n: usize, what: &'static str| {
            if p.len() < n {
                Err(FrameError::Malformed(what))
            } else {
                Ok(())
            }
        };
        Ok(Some(match kind {
            SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                let associated_to = p.get_u32() & 0x7fff_ffff;
                let priority = p.get_u8() >> 5;
                p.advance(1);
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    headers: self.headers(&p)?,
                }
            }
            SYN_REPLY => {
                need(&p, 4, "SYN_REPLY")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers: self.headers(&p)?,
                }
            }
            HEADERS => {
                need(&p, 4, "HEADERS")?;
                let stream_id = p.get_u32() & 0x7fff_ffff;
                Frame::Headers {
                    stream_id,
                    flags,
                    headers: self.headers(&p)?,
                }
            }
            RST_STREAM => {
                need(&p, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    status: p.get_u32(),
                }
            }
            SETTINGS => {
                need(&p, 4, "SETTINGS")?;
                let n = p.get_u32() as usize;
                need(&p, n.saturating_mul(8), "SETTINGS")?;
                let entries = (0..n)
                    .map(|_| {
                        let a = p.get_u32();
                        ((a >> 24) as u8, a & 0x00ff_ffff, p.get_u32())
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            PING => {
                need(&p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            GOAWAY => {
                need(&p, 4, "GOAWAY")?;
                let last_good_stream_id = p.get_u32() & 0x7fff_ffff;
                let status = if p.len() >= 4 { p.get_u32() } else { 0 };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            WINDOW_UPDATE => {
                need(&p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: p.get_u32() & 0x7fff_ffff,
                    delta: p.get_u32() & 0x7fff_ffff,
                }
            }
            kind => Frame::Unknown { kind },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        let mut wire = BytesMut::new();
        for f in frames {
            enc.encode(f, &mut wire).expect("encode");
        }
        // Feed the bytes in small pieces: frames must come out whole and in order.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = dec.decode(&mut buf).expect("decode") {
                out.push(f);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn frames_round_trip_with_shared_compression_context() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers: h(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 2,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "stdout"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536)],
            },
            Frame::Ping { id: 9 },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 5,
            },
            Frame::RstStream {
                stream_id: 3,
                status: 5,
            },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
        ];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn repeated_header_names_join_with_nul_and_split_back() {
        let f = Frame::Headers {
            stream_id: 5,
            flags: 0,
            headers: h(&[("X-A", "1"), ("x-a", "2"), ("b", "3")]),
        };
        let back = round_trip(std::slice::from_ref(&f));
        assert_eq!(
            back,
            vec![Frame::Headers {
                stream_id: 5,
                flags: 0,
                headers: h(&[("x-a", "1"), ("x-a", "2"), ("b", "3")]),
            }]
        );
    }

    #[test]
    fn wire_layout_of_data_and_control_frames() {
        let mut enc = Encoder::new();
        let mut w = BytesMut::new();
        enc.encode(
            &Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"ab"),
            },
            &mut w,
        )
        .expect("encode");
        assert_eq!(&w[..], &[0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']);
        let mut w = BytesMut::new();
        enc.encode(&Frame::Ping { id: 1 }, &mut w).expect("encode");
        assert_eq!(&w[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        // The first header block is a zlib stream that names the preset dictionary (FDICT).
        let mut w = BytesMut::new();
        enc.encode(
            &Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![],
            },
            &mut w,
        )
        .expect("encode");
        assert_eq!(w[12] & 0x0f, 8, "deflate");
        assert_ne!(w[13] & 0x20, 0, "FDICT set");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut dec = Decoder::new();
        let mut b = BytesMut::from(&[0x80, 2, 0, 1, 0, 0, 0, 0][..]);
        assert!(matches!(dec.decode(&mut b), Err(FrameError::Version(2))));
        let mut b = BytesMut::from(&[0x80, 3, 0, 1, 0, 0, 0, 2, 0, 0][..]);
        assert!(dec.decode(&mut b).is_err());
        let mut b = BytesMut::from(&[0x80, 3, 0, 2, 0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0xff][..]);
        assert!(dec.decode(&mut b).is_err(), "garbage header block");
        let mut b = BytesMut::from(&[0, 0, 0, 1, 0, 0, 0, 9, 1][..]);
        assert!(dec.decode(&mut b).expect("partial").is_none());
    }
}
