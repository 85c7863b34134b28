//! Outbound HTTP: the one shared client (`reqwest` over rustls, pooled, with time limits) and its
//! address guard against server-side request forgery. Every provider, link preview and push
//! endpoint goes through [`Egress`]; nothing else in Dovie opens outbound HTTP connections.
//!
//! The guard refuses loopback, private, link-local, CGNAT, multicast, documentation,
//! unspecified and cloud-metadata addresses — IPv4 and IPv6, including IPv4-mapped and
//! IPv4-compatible IPv6 forms — unless `egress.allow_private_addresses` is on. It checks:
//! - the URL's host when it is an address literal (before sending, and on every redirect);
//! - every address a host name resolves to, in the client's own resolver, so the addresses
//!   checked are the only ones the client can connect to (no re-resolution in between);
//! - the scheme (http and https only) and the number of redirects.
//!
//! Cloud-metadata addresses stay refused even with `allow_private_addresses`: no feature has a
//! reason to fetch them. Proxies from the environment are ignored (a proxy would connect for us,
//! past the guard). Bodies are read with a size cap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{redirect, Client, RequestBuilder, Response, Url};

use crate::config::EgressConfig;

/// Idle pooled connections kept per host.
const POOL_IDLE_PER_HOST: usize = 8;
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an outbound request did not get an answer. Callers map it to their API error
/// (`provider_error`, a missing link preview, a retried push); the detail is for logs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressError {
    /// The target is not allowed: an address the guard refuses, a scheme other than http(s),
    /// too many redirects.
    Refused(String),
    /// Connect or whole-request time limit reached.
    Timeout,
    /// The body is larger than allowed.
    TooLarge,
    /// Anything else on the way (connection refused, TLS, protocol).
    Failed(String),
}

impl std::fmt::Display for EgressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EgressError::Refused(why) => write!(f, "refused by the egress guard: {why}"),
            EgressError::Timeout => write!(f, "timed out"),
            EgressError::TooLarge => write!(f, "response body too large"),
            EgressError::Failed(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for EgressError {}

/// Whether the guard lets a connection go to `ip` (`allow_private`: the configured switch).
pub fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    let ip = canonical(ip);
    if is_metadata(ip) {
        return false;
    }
    allow_private || is_public(ip)
}

/// IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) IPv6 addresses, and NAT64's
/// well-known prefix (`64:ff9b::/96`), are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            let embedded =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            // IPv4-compatible (deprecated, but routable by some stacks), except :: and ::1.
            if s[..6] == [0; 6] && s[6] != 0 {
                return IpAddr::V4(embedded);
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return IpAddr::V4(embedded);
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Cloud instance-metadata endpoints (AWS, GCP, Azure, OpenStack, Alibaba, Oracle; AWS's IPv6).
fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254)
                || v4 == Ipv4Addr::new(169, 254, 170, 2)
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(192, 0, 0, 192)
        }
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

/// A globally routable unicast address.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0 // "this network"
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
        }
    }
}

/// The client's resolver: resolves with the system resolver, then keeps only the addresses the
/// guard allows. The client connects only to what this answers.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allowed(a.ip(), allow_private))
                .collect();
            if ok.is_empty() {
                let refused =
                    EgressError::Refused(format!("{host} resolves to no allowed address"));
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL before it is requested (the first one and every redirect target).
fn check_url(url: &Url, allow_private: bool) -> Result<(), EgressError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressError::Refused(format!(
            "scheme {} is not http or https",
            url.scheme()
        )));
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(EgressError::Refused("the URL has no host".into())),
    };
    match literal {
        Some(ip) if !allowed(ip, allow_private) => {
            Err(EgressError::Refused(format!("address {ip} is not allowed")))
        }
        _ => Ok(()),
    }
}

/// The shared outbound client and its guard. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    client: Client,
    allow_private: bool,
    max_body_bytes: u64,
}

impl Egress {
    pub fn new(config: &EgressConfig) -> Result<Egress, String> {
        Self::build(config, false, POOL_IDLE_PER_HOST)
    }

    /// A client with the same guard that keeps up to `idle_per_host` connections open to each
    /// host: push services take many requests at once from one sender.
    pub fn with_pool(config: &EgressConfig, idle_per_host: usize) -> Result<Egress, String> {
        Self::build(config, false, idle_per_host)
    }

    /// A second client with the same guard that speaks HTTP/2 from the first byte (a cleartext
    /// `http://` service that speaks only HTTP/2, as APNs stand-ins do; over TLS the protocol is
    /// agreed by ALPN either way).
    pub fn http2_only(config: &EgressConfig) -> Result<Egress, String> {
        Self::build(config, true, POOL_IDLE_PER_HOST)
    }

    fn build(
        config: &EgressConfig,
        http2_only: bool,
        idle_per_host: usize,
    ) -> Result<Egress, String> {
        let allow_private = config.allow_private_addresses;
        let max_redirects = config.max_redirects;
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(EgressError::Refused("too many redirects".into()));
            }
            match check_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let mut builder = Client::builder();
        if http2_only {
            builder = builder.http2_prior_knowledge();
        }
        let client = builder
            .user_agent(concat!("Dovie/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .pool_max_idle_per_host(idle_per_host)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .redirect(policy)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()
            .map_err(|e| format!("cannot build the outbound HTTP client: {e}"))?;
        Ok(Egress {
            client,
            allow_private,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// The client, to build requests with (send them with [`Egress::send`]).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks a URL as [`Egress::send`] would, for a client that sends through [`Egress::client`]
    /// itself to that URL's host only (a provider's SDK): its names are checked by the client's
    /// resolver, and an address literal here.
    pub fn check(&self, url: &str) -> Result<(), EgressError> {
        let url = Url::parse(url).map_err(|e| EgressError::Refused(format!("bad URL: {e}")))?;
        check_url(&url, self.allow_private)
    }

    /// Sends a request through the guard.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, EgressError> {
        let request = request
            .build()
            .map_err(|e| EgressError::Failed(e.to_string()))?;
        check_url(request.url(), self.allow_private)?;
        self.client.execute(request).await.map_err(classify)
    }

    /// `GET url` through the guard.
    pub async fn get(&self, url: &str) -> Result<Response, EgressError> {
        let url = Url::parse(url).map_err(|e| EgressError::Refused(format!("bad URL: {e}")))?;
        self.send(self.client.get(url)).await
    }

    /// Reads a response body, at most the configured size (a larger declared or actual body is
    /// [`EgressError::TooLarge`], and reading stops there).
    pub async fn body(&self, response: Response) -> Result<Bytes, EgressError> {
        self.body_capped(response, self.max_body_bytes).await
    }

    /// Reads a response body, at most `cap` bytes.
    pub async fn body_capped(&self, response: Response, cap: u64) -> Result<Bytes, EgressError> {
        if response.content_length().is_some_and(|n| n > cap) {
            return Err(EgressError::TooLarge);
        }
        let mut out = BytesMut::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            if out.len() as u64 + chunk.len() as u64 > cap {
                return Err(EgressError::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Finds the guard's own refusal inside a client error, else names the failure.
fn classify(e: reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(own) = err.downcast_ref::<EgressError>() {
            return own.clone();
        }
        source = err.source();
    }
    if e.is_timeout() {
        return EgressError::Timeout;
    }
    EgressError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.5",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
        ] {
            assert!(!allowed(ip(a), false), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(allowed(ip(a), false), "{a} must pass");
        }
    }

    #[test]
    fn metadata_stays_refused_even_when_private_addresses_are_allowed() {
        for a in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert!(!allowed(ip(a), true), "{a} must be refused");
        }
        assert!(allowed(ip("127.0.0.1"), true));
        assert!(allowed(ip("10.0.0.1"), true));
    }

    #[test]
    fn urls_are_checked_for_scheme_and_literal_hosts() {
        let url = |s: &str| Url::parse(s).expect("url");
        assert!(check_url(&url("https://example.com/a"), false).is_ok());
        assert!(check_url(&url("ftp://example.com/a"), false).is_err());
        assert!(check_url(&url("file:///etc/passwd"), false).is_err());
        assert!(check_url(&url("http://127.0.0.1:8080/"), false).is_err());
        assert!(check_url(&url("http://[::1]/"), false).is_err());
        assert!(check_url(&url("http://[::ffff:7f00:1]/"), false).is_err());
        assert!(
            check_url(&url("http://2130706433/"), false).is_err(),
            "decimal 127.0.0.1"
        );
        assert!(
            check_url(&url("http://0x7f.1/"), false).is_err(),
            "hex form"
        );
        assert!(check_url(&url("http://127.0.0.1/"), true).is_ok());
    }
}
