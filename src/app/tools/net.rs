//! The `fetch` tool (the name and arguments of the reference `mcp-server-fetch`): GET a URL for a
//! model or client, HTML simplified to Markdown (htmd), text returned in `max_length` pieces from
//! `start_index`. Gated by `net.http` in the scope of the first root.
//!
//! Invariants: only `http` and `https`; every hop's host is resolved here and each address
//! checked before connecting, and the connection goes to exactly those addresses (no second DNS
//! answer can swap in another: a rebinding name cannot reach this machine or the LAN); unless
//! `[fetch] allow_private` says so, loopback, private, link-local, CGNAT, unique-local,
//! multicast and unspecified addresses are refused (rule `fetch-private-address`) before any
//! packet is sent; redirects are followed by hand (at most 5), each target checked the same way;
//! at most `[fetch] max_kb` of a body is read, within `[fetch] timeout_ms` for the whole request.

use std::net::{IpAddr, SocketAddr};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::{Call, Output, ToolError, parse};
use crate::config::FetchConfig;
use crate::core::policy::Scope;

/// `fetch` arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Fetch {
    /// URL to fetch (http or https)
    pub url: String,
    /// Maximum number of characters to return.
    #[serde(default = "five_thousand")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_length: u64,
    /// On return output starting at this character index, useful if a previous fetch was
    /// truncated and more context is required.
    #[serde(default)]
    pub start_index: u64,
    /// Get the actual HTML content of the requested page, without simplification.
    #[serde(default)]
    pub raw: bool,
}

fn five_thousand() -> u64 {
    5000
}

const MAX_REDIRECTS: usize = 5;

pub async fn run(call: &Call<'_>, name: &str, args: Value) -> Result<Output, ToolError> {
    let a: Fetch = parse(name, args)?;
    if a.max_length == 0 || a.max_length > 1_000_000 {
        return Err(ToolError::Failed(
            "max_length must be between 1 and 1000000".into(),
        ));
    }
    let url = checked_url(&a.url)?;
    // An address written in the URL is checked before the user is asked; a name is resolved only
    // after approval (resolving it is already a request: `secret.attacker.example` leaks by DNS).
    if let Some(ip) = literal_ip(&url) {
        check_public(&url, ip, &call.settings.fetch)?;
    }
    let scope = Scope::new(
        call.roots
            .dirs()
            .first()
            .cloned()
            .unwrap_or_else(|| "/".into()),
    );
    call.allow(&scope, &format!("fetch {url}")).await?;
    let cfg = &call.settings.fetch;
    let fetched = tokio::time::timeout(cfg.timeout, get(url.clone(), cfg))
        .await
        .map_err(|_| {
            ToolError::Failed(format!(
                "Failed to fetch {url}: no complete answer within {} ms (fetch.timeout_ms)",
                cfg.timeout.as_millis()
            ))
        })??;
    let html = fetched.content_type.contains("text/html")
        || (fetched.content_type.is_empty() && looks_like_html(&fetched.body));
    let textual = html
        || fetched.content_type.is_empty()
        || fetched.content_type.starts_with("text/")
        || ["json", "xml", "javascript", "yaml", "toml"]
            .iter()
            .any(|t| fetched.content_type.contains(t));
    if !textual {
        return Err(ToolError::Failed(format!(
            "Failed to fetch {url}: the content type {} is not text; fetch returns text only",
            fetched.content_type
        )));
    }
    let body = String::from_utf8_lossy(&fetched.body).into_owned();
    let (content, prefix) = if html && !a.raw {
        (markdown(&body)?, String::new())
    } else if !html && !a.raw {
        (
            body,
            format!(
                "Content type {} cannot be simplified to markdown, but here is the raw content:\n",
                if fetched.content_type.is_empty() {
                    "(none)"
                } else {
                    &fetched.content_type
                }
            ),
        )
    } else {
        (body, String::new())
    };
    let mut text = window(&content, a.start_index as usize, a.max_length as usize);
    if fetched.capped {
        text.push_str(&format!(
            "\n\n[zeke: the response was cut at {} KiB (fetch.max_kb)]",
            cfg.max_bytes / 1024
        ));
    }
    call.text(
        format!("{prefix}Contents of {}:\n{text}", fetched.url),
        Default::default(),
    )
}

/// `start_index..start_index+max_length` of `content` in characters, with the reference server's
/// note when more remains.
fn window(content: &str, start: usize, max: usize) -> String {
    let total = content.chars().count();
    if start >= total {
        return "<error>No more content available.</error>".into();
    }
    let piece: String = content.chars().skip(start).take(max).collect();
    let end = start + piece.chars().count();
    if end < total {
        format!(
            "{piece}\n\n<error>Content truncated. Call the fetch tool with a start_index of {end} to get more content.</error>"
        )
    } else {
        piece
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    head.trim_start().starts_with("<!doctype html") || head.contains("<html")
}

fn markdown(html: &str) -> Result<String, ToolError> {
    htmd::HtmlToMarkdown::builder()
        .skip_tags(vec![
            "script", "style", "noscript", "iframe", "svg", "head", "template",
        ])
        .build()
        .convert(html)
        .map_err(|e| ToolError::Failed(format!("cannot simplify the page to Markdown: {e}")))
}

fn checked_url(s: &str) -> Result<url::Url, ToolError> {
    let url = url::Url::parse(s).map_err(|e| ToolError::Failed(format!("url {s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::Refused {
            rule: "fetch-scheme",
            message: format!(
                "{s}: fetch takes http and https URLs only (got {}:)",
                url.scheme()
            ),
        });
    }
    if url.host_str().is_none() {
        return Err(ToolError::Failed(format!("url {s:?} has no host")));
    }
    Ok(url)
}

/// Whether `ip` is an address on the public internet (not this machine, the LAN, link-local,
/// CGNAT, multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// The addresses `url`'s host resolves to, each checked (see the module docs).
async fn addresses(url: &url::Url, cfg: &FetchConfig) -> Result<Vec<SocketAddr>, ToolError> {
    let host = url
        .host_str()
        .ok_or_else(|| ToolError::Failed(format!("{url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| {
            ToolError::Failed(format!("Failed to fetch {url}: cannot resolve {host}: {e}"))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ToolError::Failed(format!(
            "Failed to fetch {url}: {host} has no address"
        )));
    }
    for a in &addrs {
        check_public(url, a.ip(), cfg)?;
    }
    Ok(addrs)
}

/// The address when the URL's host is one (`http://127.0.0.1/`, `http://[::1]/`).
fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// `Err(Refused)` for a non-public `ip` unless `[fetch] allow_private`.
fn check_public(url: &url::Url, ip: IpAddr, cfg: &FetchConfig) -> Result<(), ToolError> {
    if cfg.allow_private || is_public(ip) {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let what = if literal_ip(url).is_some() {
        format!("{ip} is not a public address")
    } else {
        format!("{host} resolves to {ip}, not a public address")
    };
    Err(ToolError::Refused {
        rule: "fetch-private-address",
        message: format!(
            "{url}: {what}; fetch does not reach this machine or its network (set [fetch] allow_private = true to allow it)"
        ),
    })
}

struct Fetched {
    url: url::Url,
    content_type: String,
    body: Vec<u8>,
    capped: bool,
}

async fn get(mut url: url::Url, cfg: &FetchConfig) -> Result<Fetched, ToolError> {
    for _ in 0..=MAX_REDIRECTS {
        let addrs = addresses(&url, cfg).await?;
        let host = url.host_str().unwrap_or_default().to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&host, &addrs)
            .no_proxy()
            .user_agent(concat!(
                "Zeke/",
                env!("CARGO_PKG_VERSION"),
                " (fetch tool; +https://github.com/zeke)"
            ))
            .build()
            .map_err(|e| ToolError::Failed(format!("internal error: {e}")))?;
        let failed = |e: reqwest::Error| ToolError::Failed(format!("Failed to fetch {url}: {e}"));
        let resp = client.get(url.clone()).send().await.map_err(failed)?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ToolError::Failed(format!(
                        "Failed to fetch {url}: redirect ({status}) without a location"
                    ))
                })?;
            let next = url.join(location).map_err(|e| {
                ToolError::Failed(format!(
                    "Failed to fetch {url}: bad redirect {location:?}: {e}"
                ))
            })?;
            url = checked_url(next.as_str())?;
            continue;
        }
        if !status.is_success() {
            return Err(ToolError::Failed(format!(
                "Failed to fetch {url} - status code {}",
                status.as_u16()
            )));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut body = Vec::new();
        let mut capped = false;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ToolError::Failed(format!("Failed to fetch {url}: {e}")))?;
            let room = cfg.max_bytes.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                capped = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Fetched {
            url,
            content_type,
            body,
            capped,
        });
    }
    Err(ToolError::Failed(format!(
        "Failed to fetch {url}: more than {MAX_REDIRECTS} redirects"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn windows_in_characters_with_the_reference_note() {
        assert_eq!(window("héllo", 0, 10), "héllo");
        assert_eq!(
            window("héllo", 1, 2),
            "él\n\n<error>Content truncated. Call the fetch tool with a start_index of 3 to get more content.</error>"
        );
        assert_eq!(
            window("abc", 3, 2),
            "<error>No more content available.</error>"
        );
    }
}
