//! A guard in front of nvim-rs: it reads the raw stream from Neovim, passes on every well-formed
//! msgpack-RPC message byte for byte, and skips anything else with a log line — nvim-rs ends its
//! I/O loop (and so the backend) on the first frame it cannot decode.
//!
//! Well-formed means one complete msgpack value shaped as a message: `[0, msgid, method, params]`
//! (request), `[1, msgid, error, result]` (response) or `[2, method, params]` (notification), with
//! an unsigned `msgid`, a string `method` and an array `params`. A value of another shape is
//! dropped whole. Bytes that are not msgpack at all are skipped up to the next byte that can start
//! a message (`0x93` or `0x94`). A frame that never completes is given up after
//! [`MAX_FRAME`] bytes.
//!
//! Invariant: what reaches nvim-rs is exactly the bytes Neovim sent for each well-formed message,
//! in order.

use std::io::Cursor;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The most bytes one message may take (a whole-buffer lines event of a large file fits).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// What one look at the buffered bytes found.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// A well-formed message of this many bytes.
    Message(usize),
    /// A complete value of this many bytes that is not a message.
    NotMessage(usize, String),
    /// Not msgpack here: skip this many bytes (to the next possible message start).
    Garbage(usize),
    /// The value is not complete yet.
    More,
}

/// A resumable walk over one msgpack value: how far it got and the items still owed by each open
/// array or map, so a large frame arriving in many reads is scanned once, not once per read.
#[derive(Debug, Default)]
struct Scan {
    pos: usize,
    open: Vec<u64>,
}

/// What a scan step found.
enum Step {
    /// The value ends at this offset.
    Done(usize),
    More,
    Invalid,
}

impl Scan {
    /// Walks on from where it stopped, over `buf` (which only ever grows at the end).
    fn resume(&mut self, buf: &[u8]) -> Step {
        use rmp::Marker as M;
        loop {
            let Some(&byte) = buf.get(self.pos) else {
                return Step::More;
            };
            let pos = self.pos;
            let be = |n: usize| -> Option<u64> {
                let b = buf.get(pos + 1..pos + 1 + n)?;
                Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
            };
            // (header bytes, payload bytes, items this value opens); `None` = header incomplete
            let sized = |width: usize, extra: usize, items: bool| {
                be(width).map(|n| {
                    if items {
                        (1 + width, 0, n)
                    } else {
                        (1 + width + extra, n, 0)
                    }
                })
            };
            let found: Option<(usize, u64, u64)> = match M::from_u8(byte) {
                M::FixPos(_) | M::FixNeg(_) | M::Null | M::True | M::False => Some((1, 0, 0)),
                M::Reserved => return Step::Invalid,
                M::U8 | M::I8 => Some((1, 1, 0)),
                M::U16 | M::I16 => Some((1, 2, 0)),
                M::U32 | M::I32 | M::F32 => Some((1, 4, 0)),
                M::U64 | M::I64 | M::F64 => Some((1, 8, 0)),
                M::FixStr(n) => Some((1, n as u64, 0)),
                M::Str8 | M::Bin8 => sized(1, 0, false),
                M::Str16 | M::Bin16 => sized(2, 0, false),
                M::Str32 | M::Bin32 => sized(4, 0, false),
                M::FixExt1 => Some((2, 1, 0)),
                M::FixExt2 => Some((2, 2, 0)),
                M::FixExt4 => Some((2, 4, 0)),
                M::FixExt8 => Some((2, 8, 0)),
                M::FixExt16 => Some((2, 16, 0)),
                M::Ext8 => sized(1, 1, false),
                M::Ext16 => sized(2, 1, false),
                M::Ext32 => sized(4, 1, false),
                M::FixArray(n) => Some((1, 0, n as u64)),
                M::FixMap(n) => Some((1, 0, 2 * n as u64)),
                M::Array16 => sized(2, 0, true),
                M::Array32 => sized(4, 0, true),
                M::Map16 => sized(2, 0, true).map(|(h, b, n)| (h, b, 2 * n)),
                M::Map32 => sized(4, 0, true).map(|(h, b, n)| (h, b, 2 * n)),
            };
            let Some((head, body, items)) = found else {
                return Step::More;
            };
            if head as u64 + body > MAX_FRAME as u64 {
                return Step::Invalid;
            }
            let end = pos + head + body as usize;
            if end > buf.len() {
                return Step::More;
            }
            self.pos = end;
            if items > 0 {
                self.open.push(items);
                continue;
            }
            // one item done: close every container it completes
            loop {
                match self.open.last_mut() {
                    None => return Step::Done(self.pos),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// Looks at the value starting at `buf[0]`, resuming `scan` (reset once a value is decided).
fn next(buf: &[u8], scan: &mut Scan) -> Next {
    match scan.resume(buf) {
        Step::More => Next::More,
        Step::Invalid => {
            *scan = Scan::default();
            Next::Garbage(resync(buf))
        }
        Step::Done(n) => {
            *scan = Scan::default();
            match shape(&buf[..n]) {
                Ok(()) => Next::Message(n),
                Err(why) => Next::NotMessage(n, why),
            }
        }
    }
}

/// Checks the message shape from its head only (type, msgid, method; not the payload).
fn shape(frame: &[u8]) -> Result<(), String> {
    let mut cur = Cursor::new(frame);
    let len = rmp::decode::read_array_len(&mut cur)
        .map_err(|_| "a value where a message array belongs".to_string())?;
    let wrong = || format!("an array of {len} that is not a request, response or notification");
    let kind: u64 = rmp::decode::read_int(&mut cur).map_err(|_| wrong())?;
    let msgid = |c: &mut Cursor<&[u8]>| rmp::decode::read_int::<u64, _>(c).is_ok();
    let method = |c: &mut Cursor<&[u8]>| {
        let Ok(n) = rmp::decode::read_str_len(c) else {
            return false;
        };
        let start = c.position() as usize;
        frame
            .get(start..start + n as usize)
            .is_some_and(|b| std::str::from_utf8(b).is_ok())
    };
    let ok = match (kind, len) {
        (0, 4) => msgid(&mut cur) && method(&mut cur),
        (1, 4) => msgid(&mut cur),
        (2, 3) => method(&mut cur),
        _ => false,
    };
    if ok { Ok(()) } else { Err(wrong()) }
}

/// Bytes to drop after bytes that are not msgpack: up to the next position (after the first
/// byte) where a well-formed message starts, or may start once more bytes come; a `0x93`/`0x94`
/// inside the garbage that does not begin a message is passed over.
fn resync(buf: &[u8]) -> usize {
    let mut from = 0;
    loop {
        let at = from + skip(&buf[from..]);
        if at >= buf.len() {
            return buf.len();
        }
        let mut scan = Scan::default();
        match scan.resume(&buf[at..]) {
            Step::More if plausible_head(&buf[at..]) => return at,
            Step::Done(n) if shape(&buf[at..at + n]).is_ok() => return at,
            _ => from = at,
        }
    }
}

/// Whether an incomplete value at `b` could be a message: `[0|1, …]` of 4 or `[2, …]` of 3 items,
/// the type written as the one-byte integer Neovim sends.
fn plausible_head(b: &[u8]) -> bool {
    matches!(
        (b.first(), b.get(1)),
        (Some(0x94), Some(0x00 | 0x01)) | (Some(0x93), Some(0x02)) | (Some(0x93 | 0x94), None)
    )
}

/// Bytes to drop: up to the next `0x93`/`0x94` after the first byte.
fn skip(buf: &[u8]) -> usize {
    buf.iter()
        .skip(1)
        .position(|&b| b == 0x93 || b == 0x94)
        .map_or(buf.len(), |i| i + 1)
}

/// Copies well-formed messages from `input` to `output` until `input` ends (then `output` is
/// shut down, which nvim-rs reads as Neovim closing the channel).
pub async fn guard<R, W>(mut input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut eof = false;
    let mut scan = Scan::default();
    loop {
        // hand on every complete frame in the buffer
        let mut start = 0;
        loop {
            match next(&buf[start..], &mut scan) {
                Next::Message(n) => {
                    output.write_all(&buf[start..start + n]).await?;
                    start += n;
                }
                Next::NotMessage(n, why) => {
                    tracing::warn!(bytes = n, "skipped a malformed msgpack-RPC frame: {why}");
                    start += n;
                }
                Next::Garbage(n) => {
                    tracing::warn!(bytes = n, "skipped bytes that are not msgpack");
                    start += n;
                }
                Next::More => break,
            }
            if start == buf.len() {
                break;
            }
        }
        buf.drain(..start);
        output.flush().await?;
        if eof {
            if !buf.is_empty() {
                tracing::warn!(bytes = buf.len(), "the channel closed inside a frame");
            }
            return output.shutdown().await;
        }
        if buf.len() > MAX_FRAME {
            tracing::warn!(
                bytes = buf.len(),
                "a frame larger than {MAX_FRAME} bytes never completed; skipped"
            );
            let n = skip(&buf);
            buf.drain(..n);
            scan = Scan::default();
            continue;
        }
        let n = input.read(&mut chunk).await?;
        if n == 0 {
            eof = true;
        } else {
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn encode(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, v).unwrap();
        b
    }

    fn request(id: u64) -> Vec<u8> {
        encode(&Value::Array(vec![
            0.into(),
            id.into(),
            "status".into(),
            Value::Array(vec![]),
        ]))
    }

    #[tokio::test]
    async fn passes_messages_exactly_and_skips_the_rest() {
        let mut input = Vec::new();
        input.extend(request(1));
        input.extend([0xc1, 0xc1, 0x00]); // never-used marker: not msgpack
        input.extend(encode(&Value::Map(vec![]))); // msgpack, not a message
        input.extend(encode(&Value::Array(vec![0.into(), "x".into()]))); // wrong shape
        input.extend(request(2));
        input.extend(&request(3)[..3]); // cut short by the channel closing
        let mut out = Vec::new();
        guard(&input[..], &mut out).await.unwrap();
        let mut want = request(1);
        want.extend(request(2));
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn frames_split_across_reads_are_joined() {
        let (mut w, r) = tokio::io::duplex(8);
        let msg = request(7);
        let sent = msg.clone();
        let writer = tokio::spawn(async move {
            for b in sent.chunks(3) {
                w.write_all(b).await.unwrap();
            }
        });
        let mut out = Vec::new();
        guard(r, &mut out).await.unwrap();
        writer.await.unwrap();
        assert_eq!(out, msg);
    }

    use proptest::prelude::*;

    /// Complete msgpack values of many shapes that are not messages, and invalid bytes.
    fn noise() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(|s: String| Value::from(s)),
            any::<bool>().prop_map(Value::from),
            Just(Value::Nil),
        ];
        let value = leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::Map),
            ]
        });
        prop_oneof![
            value
                .prop_filter("not a message", |v| {
                    let mut b = Vec::new();
                    rmpv::encode::write_value(&mut b, v).unwrap();
                    shape(&b).is_err()
                })
                .prop_map(|v| encode(&v)),
            Just(vec![0xc1]),
        ]
    }

    proptest! {
        // Non-message values and invalid bytes between real messages: every real message comes
        // through byte for byte, in order, and nothing else does.
        #[test]
        fn real_messages_survive_values_that_are_not_messages(
            between in prop::collection::vec(prop::collection::vec(noise(), 0..3), 1..6),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut input = Vec::new();
            let mut want = Vec::new();
            for (i, n) in between.iter().enumerate() {
                for v in n {
                    input.extend(v);
                }
                let m = request(i as u64);
                input.extend(&m);
                want.extend(m);
            }
            let mut out = Vec::new();
            rt.block_on(guard(&input[..], &mut out)).unwrap();
            prop_assert_eq!(out, want);
        }

        // Arbitrary bytes: the guard never panics or stalls, and all it hands on is well-formed
        // messages.
        #[test]
        fn any_bytes_give_only_messages(input in prop::collection::vec(any::<u8>(), 0..400)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut out = Vec::new();
            rt.block_on(guard(&input[..], &mut out)).unwrap();
            let mut rest = &out[..];
            while !rest.is_empty() {
                let mut scan = Scan::default();
                match next(rest, &mut scan) {
                    Next::Message(n) => rest = &rest[n..],
                    other => prop_assert!(false, "not a message in the output: {other:?}"),
                }
            }
        }
    }
}
