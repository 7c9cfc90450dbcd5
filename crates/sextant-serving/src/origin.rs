//! Web origins (`scheme://host:port`) as browsers send them in `Origin`
//! headers and as operators list them (`--allowed-origins`, an endpoint's
//! `allowed_origins`), compared in one normalized form.

/// A listed origin (`--allowed-origins`, an endpoint's `allowed_origins`) in the form
/// an `Origin` header is compared in; one that is not `http(s)://host[:port]` is an
/// error naming it.
pub fn normalize_origin(o: &str) -> Result<String, String> {
    WebOrigin::parse(o.trim().trim_end_matches('/'))
        .map(|parsed| parsed.to_string())
        .ok_or_else(|| {
            format!(
                "invalid allowed origin '{o}': write it as scheme://host[:port], \
                 e.g. https://app.example.com"
            )
        })
}

/// A web origin, `scheme://host:port`, lowercased, the port made explicit.
#[derive(Debug, PartialEq, Eq)]
pub struct WebOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl WebOrigin {
    /// An `Origin` value; `null` and anything but http(s) give `None`.
    pub fn parse(s: &str) -> Option<WebOrigin> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (host, port) = split_host_port(rest)?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-[]:_".contains(&b))
        {
            return None;
        }
        Some(WebOrigin {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default_port),
        })
    }

    /// Whether this origin is the server answering `host` (a Host header):
    /// the same host and port. Either scheme is the server's own, since a
    /// proxy in front may speak https for it.
    pub fn is_host(&self, host: &str) -> bool {
        match split_host_port(host) {
            Some((name, port)) => {
                name.eq_ignore_ascii_case(&self.host)
                    && port.unwrap_or(if self.scheme == "https" { 443 } else { 80 }) == self.port
            }
            None => false,
        }
    }
}

impl std::fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `host[:port]` (IPv6 in brackets); `None` when the port is not a number
/// or anything follows the authority.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.contains(['/', '?', '#', '@']) {
        return None;
    }
    let port_at = if s.starts_with('[') {
        let end = s.find(']')?;
        match &s[end + 1..] {
            "" => None,
            rest if rest.starts_with(':') => Some(end + 1),
            _ => return None,
        }
    } else {
        s.rfind(':')
    };
    match port_at {
        None => Some((s, None)),
        Some(i) => Some((&s[..i], Some(s[i + 1..].parse().ok()?))),
    }
}

/// An `Origin` header in the form listed origins are kept in; `None` for `null`,
/// anything but http(s), or a malformed value.
pub fn origin_of_header(value: &axum::http::HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    WebOrigin::parse(text).map(|o| o.to_string())
}
