//! The CRI log format kubelet reads: `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <content>\n`.
//! `P` marks a partial line (the runtime split a long line), `F` the last piece: the pieces joined
//! with a newline after the `F` one are the line the container wrote.

use crate::timefmt::parse_rfc3339;

/// Which stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ts_ns: i64,
    pub stream: Stream,
    pub partial: bool,
    pub content: Vec<u8>,
}

impl Entry {
    /// What the container wrote: the content, plus the newline a full entry ends with.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.content.clone();
        if !self.partial {
            b.push(b'\n');
        }
        b
    }
}

/// Parse one line (without its trailing newline). `None` for a malformed line.
pub fn parse(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tags = parts.next()?;
    let partial = match tags.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Entry {
        ts_ns: parse_rfc3339(ts)?,
        stream,
        partial,
        content: parts.next().unwrap_or_default().to_vec(),
    })
}

/// Entries grouped into the container's lines (each group: zero or more `P` then one `F`; a trailing
/// group of only `P` entries is a line still being written).
pub fn group_lines(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut cur: Vec<Entry> = Vec::new();
    for e in entries {
        let done = !e.partial;
        cur.push(e);
        if done {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_lines() {
        let e = parse(b"2016-10-06T00:17:09.669794202Z stdout F hello world").expect("parse");
        assert_eq!(e.stream, Stream::Stdout);
        assert!(!e.partial);
        assert_eq!(e.bytes(), b"hello world\n");
        let p = parse(b"2016-10-06T00:17:09.669794203Z stderr P abc").expect("parse");
        assert!(p.partial);
        assert_eq!(p.stream, Stream::Stderr);
        assert_eq!(p.bytes(), b"abc");
        let empty = parse(b"2016-10-06T00:17:09.669794203Z stdout F ").expect("parse");
        assert_eq!(empty.bytes(), b"\n");
        let tagged = parse(b"2016-10-06T00:17:09Z stdout F:x y").expect("parse");
        assert_eq!(tagged.content, b"y");
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"2016-10-06T00:17:09Z stdin F x").is_none());
    }

    #[test]
    fn groups_partials_into_lines() {
        let lines = [
            "2020-01-01T00:00:00Z stdout P ab",
            "2020-01-01T00:00:01Z stdout F cd",
            "2020-01-01T00:00:02Z stdout F ef",
            "2020-01-01T00:00:03Z stdout P gh",
        ];
        let entries: Vec<Entry> = lines.iter().filter_map(|l| parse(l.as_bytes())).collect();
        let g = group_lines(entries);
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].len(), 2);
        let joined: Vec<u8> = g[0].iter().flat_map(Entry::bytes).collect();
        assert_eq!(joined, b"abcd\n");
    }
}
