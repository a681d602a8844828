//! CRI container log format: `<RFC3339Nano> <stream> <P|F> <content>\n`.
//! A line longer than the limit is cut into `P` (partial) records followed by a
//! final `F` record; content left at EOF without a newline is written as `F`
//! (what containerd's CRI plugin does), so nothing is lost.

/// Cuts a byte stream into CRI log records.
pub struct Framer {
    max_line: usize,
    buf: Vec<u8>,
}

/// One record's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Partial,
    Full,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Partial => "P",
            Tag::Full => "F",
        }
    }
}

impl Framer {
    pub fn new(max_line: usize) -> Framer {
        Framer {
            max_line: max_line.max(1),
            buf: Vec::new(),
        }
    }

    /// Feed bytes; returns the records now complete (content without the newline).
    pub fn feed(&mut self, data: &[u8]) -> Vec<(Tag, Vec<u8>)> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                out.push((Tag::Full, std::mem::take(&mut self.buf)));
            } else {
                self.buf.push(b);
                if self.buf.len() >= self.max_line {
                    out.push((Tag::Partial, std::mem::take(&mut self.buf)));
                }
            }
        }
        out
    }

    /// End of stream: what is left becomes a final `F` record.
    pub fn finish(&mut self) -> Option<(Tag, Vec<u8>)> {
        if self.buf.is_empty() {
            None
        } else {
            Some((Tag::Full, std::mem::take(&mut self.buf)))
        }
    }
}

/// Format one record.
pub fn record(ts: &str, stream: &str, tag: Tag, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ts.len() + stream.len() + content.len() + 6);
    v.extend_from_slice(ts.as_bytes());
    v.push(b' ');
    v.extend_from_slice(stream.as_bytes());
    v.push(b' ');
    v.extend_from_slice(tag.as_str().as_bytes());
    v.push(b' ');
    v.extend_from_slice(content);
    v.push(b'\n');
    v
}

/// Now as RFC 3339 with nanoseconds, UTC (`2026-11-29T10:00:00.123456789Z`).
pub fn now_rfc3339_nano() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

pub fn timestamp(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Parse one record back (tests, and criusctl logs later).
pub fn parse(line: &str) -> Option<(&str, &str, Tag, &str)> {
    let mut it = line.splitn(4, ' ');
    let ts = it.next()?;
    let stream = it.next()?;
    let tag = match it.next()? {
        "P" => Tag::Partial,
        "F" => Tag::Full,
        _ => return None,
    };
    Some((ts, stream, tag, it.next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads() {
        let mut f = Framer::new(100);
        assert!(f.feed(b"hel").is_empty());
        let r = f.feed(b"lo\nwor");
        assert_eq!(r, vec![(Tag::Full, b"hello".to_vec())]);
        let r = f.feed(b"ld\n\n");
        assert_eq!(r, vec![(Tag::Full, b"world".to_vec()), (Tag::Full, vec![])]);
        assert_eq!(f.finish(), None);
    }

    #[test]
    fn long_lines_become_partials() {
        let mut f = Framer::new(4);
        let r = f.feed(b"abcdefghij\n");
        assert_eq!(
            r,
            vec![
                (Tag::Partial, b"abcd".to_vec()),
                (Tag::Partial, b"efgh".to_vec()),
                (Tag::Full, b"ij".to_vec())
            ]
        );
    }

    #[test]
    fn eof_flushes_as_full() {
        let mut f = Framer::new(10);
        assert!(f.feed(b"no newline").len() == 1); // exactly the limit: one partial
        assert_eq!(f.finish(), None);
        let mut f = Framer::new(64);
        f.feed(b"tail");
        assert_eq!(f.finish(), Some((Tag::Full, b"tail".to_vec())));
    }

    #[test]
    fn record_format_round_trips() {
        let t =
            time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_123).expect("ts");
        let ts = timestamp(t);
        assert_eq!(ts, "2023-11-14T22:13:20.000000123Z");
        let rec = record(&ts, "stdout", Tag::Full, b"hi there");
        let s = String::from_utf8(rec).expect("utf8");
        assert_eq!(s, "2023-11-14T22:13:20.000000123Z stdout F hi there\n");
        let (pts, st, tag, c) = parse(s.trim_end_matches('\n')).expect("parse");
        assert_eq!(
            (pts, st, tag, c),
            (ts.as_str(), "stdout", Tag::Full, "hi there")
        );
    }
}
