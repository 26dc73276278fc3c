//! The one streaming HTTP call every adapter makes, and stream framing by crates:
//! SSE by `eventsource-stream`, NDJSON by `tokio-util`'s `LinesCodec` (max line 1 MiB).
//!
//! Errors map to the shared vocabulary: connect failure → `Unavailable`, time-out → `Timeout`,
//! non-2xx → `ProviderError::from_status` with `retry_after` from the `retry-after` header.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;

use crate::core::llm::{ErrorKind, ProviderError, parse_retry_after};

/// Longest NDJSON line accepted.
const MAX_LINE: usize = 1 << 20;
/// Most bytes of an error body kept for the message.
const MAX_ERROR_BODY: usize = 4096;

/// The shared HTTP client: connect time-out 3 s, no overall time-out (callers limit each job).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("zeke/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("reqwest client with static settings")
}

/// Header list for a request; values marked sensitive are never printed by reqwest.
pub fn headers(
    pairs: &[(&'static str, &str)],
    secret: Option<(&'static str, String)>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    if let Some((k, v)) = secret
        && let Ok(mut v) = HeaderValue::from_str(&v)
    {
        v.set_sensitive(true);
        h.insert(HeaderName::from_static(k), v);
    }
    h
}

/// POSTs `body` as JSON and returns the response when its status is 2xx.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: &serde_json::Value,
) -> Result<reqwest::Response, ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| {
        ProviderError::new(ErrorKind::Invalid, format!("cannot encode request: {e}"))
    })?;
    let resp = client
        .post(url)
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    check_status(resp).await
}

/// Reads a whole (small) JSON answer.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, ProviderError> {
    let url = resp.url().to_string();
    let bytes = resp.bytes().await.map_err(|e| transport_error(&url, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ProviderError::new(
            ErrorKind::Malformed,
            format!("{url}: unexpected answer: {e}"),
        )
    })
}

/// GETs `url` and returns the response when its status is 2xx.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<reqwest::Response, ProviderError> {
    let resp = client
        .get(url)
        .headers(headers)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    check_status(resp).await
}

async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    Err(ProviderError::from_status(
        status.as_u16(),
        retry_after,
        &String::from_utf8_lossy(&body),
    ))
}

/// Maps a reqwest failure to the vocabulary, naming the URL (never headers).
pub fn transport_error(url: &str, e: &reqwest::Error) -> ProviderError {
    let host = url.split('/').take(3).collect::<Vec<_>>().join("/");
    if e.is_timeout() {
        ProviderError::new(ErrorKind::Timeout, format!("{host} did not answer in time"))
    } else if e.is_connect() {
        ProviderError::new(
            ErrorKind::Unavailable,
            format!("cannot connect to {host} (is the server running?)"),
        )
    } else if e.is_body() || e.is_decode() {
        ProviderError::new(
            ErrorKind::Malformed,
            format!("{host} broke off its answer: {}", root_cause(e)),
        )
    } else {
        ProviderError::new(
            ErrorKind::Unavailable,
            format!("request to {host} failed: {}", root_cause(e)),
        )
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The `data` fields of a Server-Sent Events response, one item per event.
pub fn sse_data(
    resp: reqwest::Response,
) -> impl Stream<Item = Result<String, ProviderError>> + Send + 'static {
    let url = resp.url().to_string();
    resp.bytes_stream().eventsource().map(move |r| match r {
        Ok(ev) => Ok(ev.data),
        Err(eventsource_stream::EventStreamError::Transport(e)) => Err(transport_error(&url, &e)),
        Err(e) => Err(ProviderError::new(
            ErrorKind::Malformed,
            format!("malformed event stream: {e}"),
        )),
    })
}

/// The non-empty lines of an NDJSON response.
pub fn ndjson_lines(
    resp: reqwest::Response,
) -> impl Stream<Item = Result<String, ProviderError>> + Send + 'static {
    let url = resp.url().to_string();
    let bytes = resp.bytes_stream().map_err(std::io::Error::other);
    FramedRead::new(
        StreamReader::new(bytes),
        LinesCodec::new_with_max_length(MAX_LINE),
    )
    .map(move |r| {
        r.map_err(|e| match e {
            tokio_util::codec::LinesCodecError::MaxLineLengthExceeded => ProviderError::new(
                ErrorKind::Malformed,
                format!("{url}: a stream line exceeds {MAX_LINE} bytes"),
            ),
            tokio_util::codec::LinesCodecError::Io(e) => ProviderError::new(
                ErrorKind::Malformed,
                format!("{url} broke off its answer: {e}"),
            ),
        })
    })
    .try_filter(|l| futures_util::future::ready(!l.trim().is_empty()))
}

/// A stream decoder: maps each frame to events, and checks the end.
pub trait Decode: Send + 'static {
    /// One frame (an SSE `data` field, an NDJSON line) → zero or more events.
    fn map(&mut self, frame: &str) -> Result<Vec<crate::core::llm::Event>, ProviderError>;
    /// Called once when the response ends without a transport error. An answer cut off before
    /// the protocol's end marker (`[DONE]`, `message_stop`, a finish reason, `done: true`) is
    /// `Err(Malformed)` here, so that a stream cut mid-answer is a failure, not a short answer.
    fn end(&mut self) -> Result<Vec<crate::core::llm::Event>, ProviderError> {
        Ok(Vec::new())
    }
}

/// A closure as a [`Decode`] whose end is always fine.
struct Frames<F>(F);

impl<F> Decode for Frames<F>
where
    F: FnMut(&str) -> Result<Vec<crate::core::llm::Event>, ProviderError> + Send + 'static,
{
    fn map(&mut self, frame: &str) -> Result<Vec<crate::core::llm::Event>, ProviderError> {
        (self.0)(frame)
    }
}

/// [`stream_decoded`] with a closure as the decoder (no end check).
pub fn stream_events<Open, Frm, FS, Map>(
    open: Open,
    frames: Frm,
    map: Map,
) -> crate::providers::EventStream
where
    Open: std::future::Future<Output = Result<reqwest::Response, ProviderError>> + Send + 'static,
    Frm: FnOnce(reqwest::Response) -> FS + Send + 'static,
    FS: Stream<Item = Result<String, ProviderError>> + Send + 'static,
    Map: FnMut(&str) -> Result<Vec<crate::core::llm::Event>, ProviderError> + Send + 'static,
{
    stream_decoded(open, frames, Frames(map))
}

/// The error [`Decode::end`] gives for a stream that stopped before its end marker.
pub fn cut_off(what: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Malformed,
        format!("{what} ended before the answer was complete (the stream was cut off)"),
    )
}

/// Runs `open` (the HTTP call) lazily when the stream is first polled, then streams `frames` of
/// the response through `decode` (one frame → zero or more events, then [`Decode::end`]). A
/// decoding error ends the stream.
pub fn stream_decoded<Open, Frm, FS, D>(
    open: Open,
    frames: Frm,
    decode: D,
) -> crate::providers::EventStream
where
    Open: std::future::Future<Output = Result<reqwest::Response, ProviderError>> + Send + 'static,
    Frm: FnOnce(reqwest::Response) -> FS + Send + 'static,
    FS: Stream<Item = Result<String, ProviderError>> + Send + 'static,
    D: Decode,
{
    use std::sync::{Arc, Mutex};
    let decode = Arc::new(Mutex::new(decode));
    let at_end = decode.clone();
    futures_util::stream::once(async move {
        match open.await {
            Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
            Ok(resp) => frames(resp)
                .map(move |frame| {
                    let r = frame
                        .and_then(|f| decode.lock().unwrap_or_else(|e| e.into_inner()).map(&f));
                    match r {
                        Ok(evs) => futures_util::stream::iter(evs.into_iter().map(Ok)).boxed(),
                        Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
                    }
                })
                .flatten()
                .chain(
                    futures_util::stream::once(async move {
                        let r = at_end.lock().unwrap_or_else(|e| e.into_inner()).end();
                        match r {
                            Ok(evs) => futures_util::stream::iter(evs.into_iter().map(Ok)).boxed(),
                            Err(e) => futures_util::stream::iter([Err(e)]).boxed(),
                        }
                    })
                    .flatten(),
                )
                .boxed(),
        }
    })
    .flatten()
    .scan(false, |failed, item| {
        // stop after the first error (the end check never runs after one)
        if *failed {
            return futures_util::future::ready(None);
        }
        *failed = item.is_err();
        futures_util::future::ready(Some(item))
    })
    .boxed()
}
