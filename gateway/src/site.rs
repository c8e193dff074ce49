//! Cross-site protection (`shared/SECURITY.md` class 5), configured by
//! `gateway.allowed_hosts` and `gateway.allowed_origins`:
//!
//! - the `Host` a request names must be one this server answers to, so a
//!   page whose DNS name was re-pointed at the server (DNS rebinding) is
//!   refused (`/health` is exempt, for probes that use any address);
//! - a browser's state-changing request (anything but GET, HEAD, OPTIONS)
//!   from another origin is refused unless that origin is allowed: JSON
//!   bodies already need `Content-Type: application/json`, but artifact
//!   uploads take any body, which a page elsewhere could otherwise send;
//! - allowed origins get CORS headers, preflights included.
//!
//! Requests without `Host` (HTTP/1.0 tools) or `Origin` (every non-browser
//! client) are not cross-site requests and pass.
//!
//! Patterns, hosts: `*` (any), `*.example.com` (sub-domains), `192.168.*`
//! (prefix), `10.0.0.0/8` (an address range), `name` (any port) or
//! `name:port`; IPv6 addresses in brackets when a port follows
//! (`[::1]:5000`). Origins: `*`, or `scheme://host-pattern[:port|:*]`, where
//! an omitted port is the scheme's default.

use std::net::IpAddr;

use axum::http::{HeaderValue, Method};
use ipnet::IpNet;

/// How a host is matched.
#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`: the stored suffix starts with the dot.
    Suffix(String),
    /// `192.168.*`: the stored prefix ends before the star.
    Prefix(String),
    Net(IpNet),
    Exact(String),
}

impl HostPattern {
    fn parse(pattern: &str) -> Result<HostPattern, String> {
        let pattern = pattern.trim().to_ascii_lowercase();
        let pattern = pattern
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or(&pattern)
            .to_string();
        if pattern.is_empty() {
            return Err("an empty host pattern".into());
        }
        if pattern == "*" {
            return Ok(HostPattern::Any);
        }
        if pattern.contains('/') {
            return pattern
                .parse::<IpNet>()
                .map(HostPattern::Net)
                .map_err(|_| format!("'{pattern}' is not an address range"));
        }
        if let Some(suffix) = pattern.strip_prefix("*.") {
            return Ok(HostPattern::Suffix(format!(".{suffix}")));
        }
        if let Some(prefix) = pattern.strip_suffix('*') {
            return Ok(HostPattern::Prefix(prefix.to_string()));
        }
        if pattern.contains('*') {
            return Err(format!(
                "'{pattern}': a star may only start (*.name) or end (prefix*) a pattern"
            ));
        }
        Ok(HostPattern::Exact(pattern))
    }

    /// `host`: lower case, without brackets.
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Prefix(prefix) => host.starts_with(prefix.as_str()),
            HostPattern::Net(net) => host.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
            HostPattern::Exact(name) => {
                // `::1` and `0:0:0:0:0:0:0:1` are the same address.
                match (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => name == host,
                }
            }
        }
    }
}

/// Splits `host[:port]` (as in a `Host` header or an origin's authority)
/// into the lower-case host without brackets and the port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_ascii_lowercase(), port));
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address (several colons, no brackets): no port.
        Some((host, _)) if host.contains(':') => Some((authority.to_ascii_lowercase(), None)),
        Some((host, port)) => Some((host.to_ascii_lowercase(), Some(port.parse().ok()?))),
        None => Some((authority.to_ascii_lowercase(), None)),
    }
}

/// One `gateway.allowed_hosts` entry: a host pattern and a port (any if unset).
#[derive(Debug, Clone)]
struct HostRule {
    host: HostPattern,
    port: Option<u16>,
}

impl HostRule {
    fn parse(rule: &str) -> Result<HostRule, String> {
        let rule = rule.trim();
        if rule == "*" || rule.contains('/') {
            return Ok(HostRule {
                host: HostPattern::parse(rule)?,
                port: None,
            });
        }
        let (host, port) =
            split_authority(rule).ok_or_else(|| format!("'{rule}' is not a host[:port]"))?;
        Ok(HostRule {
            host: HostPattern::parse(&host)?,
            port,
        })
    }
}

/// Which ports an origin rule accepts.
#[derive(Debug, Clone, PartialEq)]
enum PortRule {
    Any,
    Exact(u16),
}

/// One `gateway.allowed_origins` entry.
#[derive(Debug, Clone)]
struct OriginRule {
    /// `None`: any origin (`*`).
    parts: Option<(String, HostPattern, PortRule)>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `scheme://authority` of an `Origin` header, lower-cased: (scheme, host, port).
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, authority) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_authority(authority)?;
    let port = port.or_else(|| default_port(&scheme))?;
    Some((scheme, host, port))
}

impl OriginRule {
    fn parse(rule: &str) -> Result<OriginRule, String> {
        let rule = rule.trim();
        if rule == "*" {
            return Ok(OriginRule { parts: None });
        }
        let invalid = || format!("'{rule}' is not an origin pattern (scheme://host[:port|:*])");
        let (scheme, authority) = rule.split_once("://").ok_or_else(invalid)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(invalid());
        }
        let (host, port) = match authority.strip_suffix(":*") {
            Some(host) => (host.to_string(), PortRule::Any),
            None => {
                let (host, port) = split_authority(authority).ok_or_else(invalid)?;
                let port = port.or_else(|| default_port(&scheme)).ok_or_else(invalid)?;
                (host, PortRule::Exact(port))
            }
        };
        Ok(OriginRule {
            parts: Some((scheme, HostPattern::parse(&host)?, port)),
        })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        match &self.parts {
            None => true,
            Some((rule_scheme, rule_host, rule_port)) => {
                rule_scheme == scheme
                    && rule_host.matches(host)
                    && (*rule_port == PortRule::Any || *rule_port == PortRule::Exact(port))
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Host(String),
    Origin(String),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Host(host) => format!(
                "Invalid Host header '{host}': this server does not answer to that name \
                 (a DNS rebinding attempt?). Operators add it to gateway.allowed_hosts."
            ),
            Refusal::Origin(origin) => format!(
                "Cross-origin request from '{origin}' refused. Operators add the origin to \
                 gateway.allowed_origins."
            ),
        }
    }
}

/// The configured hosts and origins.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    hosts: Vec<HostRule>,
    origins: Vec<OriginRule>,
}

impl SitePolicy {
    /// From `gateway.allowed_hosts` and `gateway.allowed_origins`; a pattern
    /// that does not parse is a configuration error.
    pub fn new(hosts: &[String], origins: &[String]) -> Result<SitePolicy, String> {
        Ok(SitePolicy {
            hosts: hosts
                .iter()
                .map(|h| HostRule::parse(h).map_err(|e| format!("gateway.allowed_hosts: {e}")))
                .collect::<Result<_, _>>()?,
            origins: origins
                .iter()
                .map(|o| OriginRule::parse(o).map_err(|e| format!("gateway.allowed_origins: {e}")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_authority(host_header) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|rule| rule.host.matches(&host) && (rule.port.is_none() || rule.port == port))
    }

    /// Whether an `Origin` is in `gateway.allowed_origins`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = parse_origin(origin) else {
            return false;
        };
        self.origins
            .iter()
            .any(|rule| rule.matches(&scheme, &host, port))
    }

    /// The check for one request: its method, `Host` (header or URI
    /// authority) and `Origin`.
    pub fn check(
        &self,
        path: &str,
        method: &Method,
        host: Option<&str>,
        origin: Option<&HeaderValue>,
    ) -> Result<(), Refusal> {
        if let Some(host) = host
            && path != "/health"
            && !self.host_allowed(host)
        {
            return Err(Refusal::Host(host.to_string()));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let Some(origin) = origin else {
            return Ok(());
        };
        let text = origin.to_str().unwrap_or("");
        if same_origin(text, host) || self.origin_allowed(text) {
            Ok(())
        } else {
            Err(Refusal::Origin(
                String::from_utf8_lossy(origin.as_bytes()).into_owned(),
            ))
        }
    }
}

impl Default for SitePolicy {
    /// The defaults of `gateway.allowed_hosts` and `gateway.allowed_origins`.
    fn default() -> SitePolicy {
        let config = quiver_common::config::GatewayConfig::default();
        SitePolicy::new(&config.allowed_hosts, &config.allowed_origins)
            .expect("the default patterns parse")
    }
}

/// A page served by this server itself (its origin's host and port are the
/// request's `Host`).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let (Some((scheme, origin_host, origin_port)), Some((host, port))) =
        (parse_origin(origin), host.and_then(split_authority))
    else {
        return false;
    };
    let port = port.or_else(|| default_port(&scheme));
    origin_host == host && Some(origin_port) == port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> SitePolicy {
        SitePolicy::default()
    }

    fn policy(hosts: &[&str], origins: &[&str]) -> SitePolicy {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SitePolicy::new(&strings(hosts), &strings(origins)).unwrap()
    }

    #[test]
    fn default_hosts_are_loopback_and_private_addresses() {
        let p = defaults();
        for ok in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
            "10.2.3.4:5000",
            "172.16.0.1",
            "172.31.255.255:80",
            "192.168.1.10:5000",
            "[fd00::1]:5000",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example.com",
            "evil.example.com:5000",
            "localhost.evil.example.com",
            "172.32.0.1",
            "8.8.8.8:5000",
            "[2001:db8::1]:5000",
            "",
            "localhost:notaport",
            "[::1",
        ] {
            assert!(!p.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn host_patterns() {
        let p = policy(
            &[
                "*.corp.example",
                "ml.example.com:443",
                "build-*",
                "10.9.0.0/16",
            ],
            &[],
        );
        assert!(p.host_allowed("ml.corp.example"));
        assert!(p.host_allowed("a.b.corp.example:8080"));
        assert!(!p.host_allowed("corp.example"));
        assert!(!p.host_allowed("evilcorp.example"));
        assert!(p.host_allowed("ml.example.com:443"));
        assert!(!p.host_allowed("ml.example.com:5000"));
        assert!(!p.host_allowed("ml.example.com"));
        assert!(p.host_allowed("build-7:5000"));
        assert!(p.host_allowed("10.9.200.1:5000"));
        assert!(!p.host_allowed("10.10.0.1:5000"));
        assert!(policy(&["*"], &[]).host_allowed("anything.at.all:1"));
    }

    #[test]
    fn bad_patterns_are_configuration_errors() {
        for bad in ["", "a*b", "10.0.0.0/99", "host:port", "[::1"] {
            assert!(
                SitePolicy::new(&[bad.to_string()], &[]).is_err(),
                "host pattern {bad:?}"
            );
        }
        for bad in ["localhost", "http://a/b", "ftp://x", "http://u@x"] {
            assert!(
                SitePolicy::new(&[], &[bad.to_string()]).is_err(),
                "origin pattern {bad:?}"
            );
        }
    }

    #[test]
    fn origins() {
        let p = defaults();
        assert!(p.origin_allowed("http://localhost:3000"));
        assert!(p.origin_allowed("http://127.0.0.1:8888"));
        assert!(p.origin_allowed("http://[::1]:8888"));
        assert!(!p.origin_allowed("https://evil.example.com"));
        assert!(!p.origin_allowed("null"));
        assert!(!p.origin_allowed("http://localhost.evil.example.com"));
        let p = policy(
            &[],
            &["https://notebook.corp.example", "https://*.apps.example:*"],
        );
        assert!(p.origin_allowed("https://notebook.corp.example"));
        assert!(p.origin_allowed("https://notebook.corp.example:443"));
        assert!(!p.origin_allowed("http://notebook.corp.example"));
        assert!(!p.origin_allowed("https://notebook.corp.example:8443"));
        assert!(p.origin_allowed("https://a.apps.example:9000"));
        assert!(policy(&[], &["*"]).origin_allowed("https://anywhere.example"));
    }

    #[test]
    fn requests() {
        let p = defaults();
        let origin = |o: &str| HeaderValue::from_str(o).unwrap();
        let evil = origin("https://evil.example.com");
        // DNS rebinding: the page's own name reaches the server.
        assert!(matches!(
            p.check(
                "/api/2.0/mlflow/experiments/search",
                &Method::GET,
                Some("evil.example.com:5000"),
                None
            ),
            Err(Refusal::Host(_))
        ));
        // Probes may use any name.
        assert!(
            p.check("/health", &Method::GET, Some("evil.example.com"), None)
                .is_ok()
        );
        // Cross-origin writes are refused, reads pass (CORS keeps their answers from the page).
        assert!(matches!(
            p.check("/x", &Method::POST, Some("127.0.0.1:5000"), Some(&evil)),
            Err(Refusal::Origin(_))
        ));
        assert!(matches!(
            p.check(
                "/x",
                &Method::PUT,
                Some("127.0.0.1:5000"),
                Some(&origin("null"))
            ),
            Err(Refusal::Origin(_))
        ));
        assert!(
            p.check("/x", &Method::GET, Some("127.0.0.1:5000"), Some(&evil))
                .is_ok()
        );
        // Same origin, an allowed origin, and clients that send no Origin pass.
        let own = origin("http://127.0.0.1:5000");
        assert!(
            p.check("/x", &Method::POST, Some("127.0.0.1:5000"), Some(&own))
                .is_ok()
        );
        let other_port = origin("http://127.0.0.1:5001");
        assert!(
            p.check(
                "/x",
                &Method::DELETE,
                Some("127.0.0.1:5000"),
                Some(&other_port)
            )
            .is_ok()
        );
        assert!(
            p.check("/x", &Method::POST, Some("127.0.0.1:5000"), None)
                .is_ok()
        );
        assert!(p.check("/x", &Method::POST, None, None).is_ok());
        // A server reached by a configured name: its own pages are same-origin.
        let named = policy(&["ml.corp.example"], &[]);
        let page = origin("https://ml.corp.example");
        assert!(
            named
                .check("/x", &Method::POST, Some("ml.corp.example"), Some(&page))
                .is_ok()
        );
        assert!(matches!(
            named.check("/x", &Method::POST, Some("ml.corp.example"), Some(&evil)),
            Err(Refusal::Origin(_))
        ));
    }
}
