//! The engine's one HTTP client, shared by the health sources and the advisory feed
//! fetcher: HTTP/1.1, one request per connection, over plain TCP or rustls with ring and the
//! Mozilla roots (plus an optional CA file).
//!
//! It connects only to the URL's own host: proxy settings of the environment are never read.
//! Error messages never show the userinfo (`user:password@`) of a URL.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::{ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::HeaderMap;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

/// A one-request-per-connection HTTP/1.1 client over TCP or TLS.
#[derive(Clone)]
pub(crate) struct HttpClient {
    tls: TlsConnector,
    /// The most a whole request may take: connecting, TLS, sending and reading the answer.
    timeout: Duration,
    /// The most connecting (name lookup and TCP) may take, when shorter than `timeout`.
    connect_timeout: Option<Duration>,
    user_agent: &'static str,
}

/// Which answers' bodies are read, and how much of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadBody {
    /// No body is read.
    Never,
    /// Every body is read, up to this many bytes.
    Always(usize),
    /// Only the body of a `200` answer is read, up to this many bytes.
    WhenOk(usize),
}

impl ReadBody {
    fn limit_for(self, status: u16) -> Option<usize> {
        match self {
            ReadBody::Never => None,
            ReadBody::Always(limit) => Some(limit),
            ReadBody::WhenOk(limit) => (status == 200).then_some(limit),
        }
    }
}

/// A status, the headers and (when asked for) the body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: no connection within {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Request(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
}

impl From<hyper::Error> for FetchError {
    fn from(e: hyper::Error) -> Self {
        FetchError::Http(error_chain(&e))
    }
}

/// The error and its sources, each said once.
fn error_chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The URL as text without its userinfo, for messages and records.
pub(crate) fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut clean = url.clone();
    // Both only fail for URLs that cannot have userinfo, which then have none to remove.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

/// `text` without what looks like userinfo after its `scheme://`, for text that did not
/// parse as a URL.
pub(crate) fn redact_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

impl HttpClient {
    /// A client whose requests take at most `timeout` each, connecting included.
    pub(crate) fn new(
        tls: Arc<ClientConfig>,
        timeout: Duration,
        user_agent: &'static str,
    ) -> HttpClient {
        HttpClient {
            tls: TlsConnector::from(tls),
            timeout,
            connect_timeout: None,
            user_agent,
        }
    }

    /// The same client, giving up connecting after `limit`.
    pub(crate) fn with_connect_timeout(mut self, limit: Duration) -> HttpClient {
        self.connect_timeout = Some(limit);
        self
    }

    /// GETs `url`; reads at most `body_limit` bytes of the body, or none without a limit.
    pub(crate) async fn get(
        &self,
        url: &Url,
        body_limit: Option<usize>,
    ) -> Result<Answer, FetchError> {
        let read = body_limit.map_or(ReadBody::Never, ReadBody::Always);
        self.request(url, read).await
    }

    /// GETs `url`, reading the body as `read` says. Redirects are not followed.
    pub(crate) async fn request(&self, url: &Url, read: ReadBody) -> Result<Answer, FetchError> {
        tokio::time::timeout(self.timeout, self.request_unbounded(url, read))
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn request_unbounded(&self, url: &Url, read: ReadBody) -> Result<Answer, FetchError> {
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => {
                return Err(FetchError::Request(format!(
                    "`{}` has no host",
                    redact(url)
                )))
            }
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| FetchError::Request(format!("`{}` has no port", redact(url))))?;
        let request = build_request(url, self.user_agent)?;
        let addr = format!("{}:{port}", url.host_str().unwrap_or(&host));
        let tcp = self.connect(&host, port, addr).await?;
        // Small requests: send them at once.
        let _ = tcp.set_nodelay(true);
        if url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| FetchError::ServerName(host.clone()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| FetchError::Tls { host, source })?;
            exchange(TokioIo::new(tls), request, read).await
        } else {
            exchange(TokioIo::new(tcp), request, read).await
        }
    }

    async fn connect(&self, host: &str, port: u16, addr: String) -> Result<TcpStream, FetchError> {
        let connecting = TcpStream::connect((host, port));
        let connected = match self.connect_timeout {
            None => connecting.await,
            Some(after) => match tokio::time::timeout(after, connecting).await {
                Ok(connected) => connected,
                Err(_) => return Err(FetchError::ConnectTimeout { addr, after }),
            },
        };
        connected.map_err(|source| FetchError::Connect { addr, source })
    }
}

fn build_request(
    url: &Url,
    user_agent: &'static str,
) -> Result<hyper::Request<Empty<Bytes>>, FetchError> {
    let host_header = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    hyper::Request::get(&url[Position::BeforePath..Position::AfterQuery])
        .header(HOST, host_header)
        .header(USER_AGENT, user_agent)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| FetchError::Request(format!("cannot request `{}`: {e}", redact(url))))
}

/// Aborts the connection task when the request is over or given up.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<S>(
    io: S,
    request: hyper::Request<Empty<Bytes>>,
    read: ReadBody,
) -> Result<Answer, FetchError>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let _connection = AbortOnDrop(tokio::spawn(connection).abort_handle());
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let Some(limit) = read.limit_for(status) else {
        return Ok(Answer {
            status,
            headers,
            body: Bytes::new(),
        });
    };
    if declared_length(&headers).is_some_and(|length| length > limit as u64) {
        return Err(FetchError::TooLarge(limit));
    }
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                FetchError::TooLarge(limit)
            } else {
                FetchError::Http(format!("reading the body failed: {}", error_chain(&*e)))
            }
        })?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The `Content-Length` of an answer, when it has a readable one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The Mozilla root certificates (webpki-roots), trusted by default.
pub(crate) fn mozilla_roots() -> RootCertStore {
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

/// The Mozilla roots plus every certificate of the PEM file at `path`; the error says what
/// was wrong with the file.
pub(crate) fn roots_with_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = mozilla_roots();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    for cert in certs {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(roots)
}

/// TLS client settings trusting `roots`, with ring's safe default protocol versions; the
/// error is the TLS library's reason.
pub(crate) fn tls_config(roots: RootCertStore) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn redact_drops_userinfo_and_keeps_the_rest() {
        let url = Url::parse("https://alice:s3cret@feeds.example:8443/a/kev.json?x=1").unwrap();
        assert_eq!(redact(&url), "https://feeds.example:8443/a/kev.json?x=1");
        let user_only = Url::parse("http://token@feeds.example/epss.csv.gz").unwrap();
        assert_eq!(redact(&user_only), "http://feeds.example/epss.csv.gz");
        let plain = Url::parse("http://127.0.0.1:8080/x.json").unwrap();
        assert_eq!(redact(&plain), "http://127.0.0.1:8080/x.json");
    }

    #[test]
    fn redact_text_drops_what_looks_like_userinfo() {
        assert_eq!(
            redact_text("ftp://bob:pw@mirror.example/kev.json"),
            "ftp://mirror.example/kev.json"
        );
        assert_eq!(redact_text("http://a:b@c@[bad/x@y"), "http://[bad/x@y");
        assert_eq!(redact_text("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact_text("no scheme@all"), "no scheme@all");
    }

    #[test]
    fn only_ok_bodies_are_read_when_asked_so() {
        assert_eq!(ReadBody::WhenOk(10).limit_for(200), Some(10));
        assert_eq!(ReadBody::WhenOk(10).limit_for(301), None);
        assert_eq!(ReadBody::WhenOk(10).limit_for(404), None);
        assert_eq!(ReadBody::Always(7).limit_for(500), Some(7));
        assert_eq!(ReadBody::Never.limit_for(200), None);
    }

    #[test]
    fn declared_length_reads_only_a_number() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), None);
        headers.insert(CONTENT_LENGTH, "1234".parse().unwrap());
        assert_eq!(declared_length(&headers), Some(1234));
        headers.insert(CONTENT_LENGTH, "12a".parse().unwrap());
        assert_eq!(declared_length(&headers), None);
    }
}
