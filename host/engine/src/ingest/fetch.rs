//! Fetching one feed document over `http://` or `https://`.
//!
//! - Only a `200` answer is read; any other final status is an error naming it.
//! - Redirects (`301`, `302`, `303`, `307`, `308`) are followed, at most [`MAX_REDIRECTS`]
//!   of them, only to `http`/`https` URLs and never from `https` down to `http`.
//! - The body may hold at most [`FetchSettings::max_body_bytes`] (default 512 MiB). A larger
//!   `Content-Length` is refused before reading; a body without one is cut off when it
//!   passes the limit.
//! - One rule decides decompression: a body that starts with the gzip magic bytes `1f 8b`
//!   is gunzipped, whatever the URL or the headers say (JSON and CSV text never start with
//!   them). At most [`FetchSettings::max_decompressed_bytes`] (default 1 GiB) may come out.
//! - Connecting gives up after [`FetchSettings::connect_timeout`] (default 30 s); the whole
//!   fetch, redirects and body included, after [`FetchSettings::timeout`] (default 10 min).
//! - URLs with userinfo (`user:password@`) are refused: patchwave sends no credentials, so
//!   it never stores or shows them either.
//! - Certificates are checked against the Mozilla roots plus the optional
//!   [`FetchSettings::ca_file`]; no proxy is read from the environment.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::LOCATION;
use hyper::HeaderMap;
use url::Url;

use super::{gunzip, GunzipError, IngestError};
use crate::http::{
    mozilla_roots, redact, roots_with_ca_file, tls_config, FetchError, HttpClient, ReadBody,
};

/// How long connecting to a feed server may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a whole fetch (redirects and body included) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest body read by default: 512 MiB (a KEV catalogue is about 1.5 MB, an EPSS
/// `.csv.gz` about 2 MB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 << 20;
/// The most a gzip body may gunzip to by default: 1 GiB (an EPSS CSV is about 10 MB).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 1 << 30;
/// How many redirects one fetch follows.
pub const MAX_REDIRECTS: usize = 5;

const USER_AGENT_VALUE: &str = concat!("patchwave-ingest/", env!("CARGO_PKG_VERSION"));
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How feeds are fetched; [`Default`] gives the documented defaults and no extra CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSettings {
    /// How long connecting (name lookup and TCP) may take.
    pub connect_timeout: Duration,
    /// How long a whole fetch may take, redirects and body included.
    pub timeout: Duration,
    /// The largest body read, in bytes (compressed size for a gzip body).
    pub max_body_bytes: usize,
    /// The most a gzip body may gunzip to, in bytes; also applies to local `.gz` files.
    pub max_decompressed_bytes: usize,
    /// A PEM file of extra CA certificates trusted for `https` besides the Mozilla roots
    /// (`[advisories] ca_file`). A relative path is taken from the working directory; the
    /// configuration makes it absolute.
    pub ca_file: Option<PathBuf>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            ca_file: None,
        }
    }
}

/// Fetches feed documents as [`FetchSettings`] say; built once per import.
#[derive(Clone)]
pub struct FeedFetcher {
    client: HttpClient,
    settings: FetchSettings,
}

impl fmt::Debug for FeedFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedFetcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a feed URL gave no document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// The URL carries `user:password@`, which patchwave neither sends nor keeps.
    #[error("credentials in the URL are not supported (patchwave sends none)")]
    Credentials,
    /// The final answer was not `200`.
    #[error("answered status {status} (expected 200){}", at_note(.redirected_to))]
    Status {
        /// The status.
        status: u16,
        /// The URL that answered, when redirects led away from the one asked.
        redirected_to: Option<String>,
    },
    /// More redirects than [`MAX_REDIRECTS`].
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The number allowed.
        limit: usize,
    },
    /// A redirect without a usable `Location`.
    #[error("redirect status {status} without a usable Location header: {reason}")]
    BadLocation {
        /// The redirect status.
        status: u16,
        /// What was wrong with the header.
        reason: String,
    },
    /// A redirect that is not followed.
    #[error("redirect to `{to}` refused: {reason}")]
    RedirectRefused {
        /// Where it pointed (without userinfo).
        to: String,
        /// Why it is not followed.
        reason: &'static str,
    },
    /// The body is larger than [`FetchSettings::max_body_bytes`].
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The gunzipped body is larger than [`FetchSettings::max_decompressed_bytes`].
    #[error("gunzipped, the body is larger than {limit} bytes")]
    DecompressedTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body starts with the gzip magic bytes but does not gunzip.
    #[error("the body starts like gzip but does not gunzip: {0}")]
    BadGzip(String),
    /// The fetch took longer than [`FetchSettings::timeout`].
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS or HTTP failed; the text says which and why.
    #[error("{0}")]
    Transport(String),
}

fn at_note(redirected_to: &Option<String>) -> String {
    match redirected_to {
        Some(url) => format!(" at `{url}` after redirects"),
        None => String::new(),
    }
}

impl From<FetchError> for FetchFailure {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::TooLarge(limit) => FetchFailure::TooLarge { limit },
            FetchError::Timeout(after) => FetchFailure::Timeout(after),
            other => FetchFailure::Transport(other.to_string()),
        }
    }
}

impl FeedFetcher {
    /// Loads the TLS settings (reading `settings.ca_file`, if any). Sends nothing.
    pub fn new(settings: FetchSettings) -> Result<FeedFetcher, IngestError> {
        let roots = match &settings.ca_file {
            None => mozilla_roots(),
            Some(path) => roots_with_ca_file(path).map_err(|reason| IngestError::CaFile {
                path: path.clone(),
                reason,
            })?,
        };
        let tls = tls_config(roots).map_err(IngestError::Tls)?;
        let client = HttpClient::new(Arc::new(tls), settings.timeout, USER_AGENT_VALUE)
            .with_connect_timeout(settings.connect_timeout);
        Ok(FeedFetcher { client, settings })
    }

    /// The settings it fetches with.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// The document at `url` (an `http` or `https` URL), gunzipped when it is gzip.
    pub(crate) async fn fetch(&self, url: &Url) -> Result<Vec<u8>, FetchFailure> {
        if has_credentials(url) {
            return Err(FetchFailure::Credentials);
        }
        let limit = self.settings.timeout;
        let body = tokio::time::timeout(limit, self.follow_redirects(url))
            .await
            .unwrap_or(Err(FetchFailure::Timeout(limit)))?;
        decode(body, self.settings.max_decompressed_bytes)
    }

    /// The body of the `200` answer reached from `start`.
    async fn follow_redirects(&self, start: &Url) -> Result<Bytes, FetchFailure> {
        let read = ReadBody::WhenOk(self.settings.max_body_bytes);
        let mut url = start.clone();
        for _ in 0..=MAX_REDIRECTS {
            let answer = self.client.request(&url, read).await?;
            match answer.status {
                200 => return Ok(answer.body),
                301 | 302 | 303 | 307 | 308 => {
                    url = redirect_target(&url, answer.status, &answer.headers)?;
                }
                status => {
                    return Err(FetchFailure::Status {
                        status,
                        redirected_to: (url != *start).then(|| redact(&url)),
                    })
                }
            }
        }
        Err(FetchFailure::TooManyRedirects {
            limit: MAX_REDIRECTS,
        })
    }
}

fn has_credentials(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Where a redirect answer from `from` leads, if it may be followed.
fn redirect_target(from: &Url, status: u16, headers: &HeaderMap) -> Result<Url, FetchFailure> {
    let bad = |reason: String| FetchFailure::BadLocation { status, reason };
    let location = headers
        .get(LOCATION)
        .ok_or_else(|| bad("there is none".into()))?
        .to_str()
        .map_err(|_| bad("it is not visible ASCII".into()))?;
    let to = from
        .join(location)
        .map_err(|e| bad(format!("not a URL: {e}")))?;
    let refuse = |reason: &'static str| FetchFailure::RedirectRefused {
        to: redact(&to),
        reason,
    };
    if !matches!(to.scheme(), "http" | "https") {
        return Err(refuse("only http and https redirects are followed"));
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Err(refuse("it goes from https down to http"));
    }
    if has_credentials(&to) {
        return Err(refuse("it carries credentials"));
    }
    Ok(to)
}

/// The body, gunzipped when it starts with the gzip magic bytes.
fn decode(body: Bytes, max_decompressed: usize) -> Result<Vec<u8>, FetchFailure> {
    if !body.starts_with(&GZIP_MAGIC) {
        return Ok(Vec::from(body));
    }
    gunzip(&body, max_decompressed).map_err(|e| match e {
        GunzipError::TooLarge { limit } => FetchFailure::DecompressedTooLarge { limit },
        GunzipError::Corrupt(e) => FetchFailure::BadGzip(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;

    use super::*;

    fn headers(location: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, location.parse().unwrap());
        h
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn relative_and_absolute_redirects_resolve_against_the_url_asked() {
        let from = url("http://feeds.example/a/b/kev.json");
        assert_eq!(
            redirect_target(&from, 302, &headers("../c.json")).unwrap(),
            url("http://feeds.example/a/c.json")
        );
        assert_eq!(
            redirect_target(&from, 301, &headers("/top.json")).unwrap(),
            url("http://feeds.example/top.json")
        );
        assert_eq!(
            redirect_target(&from, 308, &headers("https://mirror.example/kev.json")).unwrap(),
            url("https://mirror.example/kev.json")
        );
    }

    #[test]
    fn redirects_down_to_http_elsewhere_or_with_credentials_are_refused() {
        let from = url("https://feeds.example/kev.json");
        assert_eq!(
            redirect_target(&from, 302, &headers("http://feeds.example/kev.json")),
            Err(FetchFailure::RedirectRefused {
                to: "http://feeds.example/kev.json".into(),
                reason: "it goes from https down to http",
            })
        );
        assert_eq!(
            redirect_target(&from, 302, &headers("file:///etc/passwd")),
            Err(FetchFailure::RedirectRefused {
                to: "file:///etc/passwd".into(),
                reason: "only http and https redirects are followed",
            })
        );
        let refused = redirect_target(&from, 307, &headers("https://u:pw@mirror.example/k"));
        assert_eq!(
            refused,
            Err(FetchFailure::RedirectRefused {
                to: "https://mirror.example/k".into(),
                reason: "it carries credentials",
            })
        );
        assert_eq!(
            redirect_target(&from, 303, &HeaderMap::new()),
            Err(FetchFailure::BadLocation {
                status: 303,
                reason: "there is none".into(),
            })
        );
    }

    #[test]
    fn a_status_after_redirects_names_where_it_came_from() {
        let direct = FetchFailure::Status {
            status: 404,
            redirected_to: None,
        };
        assert_eq!(direct.to_string(), "answered status 404 (expected 200)");
        let moved = FetchFailure::Status {
            status: 500,
            redirected_to: Some("http://b.example/x".into()),
        };
        assert_eq!(
            moved.to_string(),
            "answered status 500 (expected 200) at `http://b.example/x` after redirects"
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn only_bodies_starting_like_gzip_are_gunzipped_within_the_limit() {
        let text = b"cve,epss,percentile\nCVE-2024-6387,0.9,0.999\n";
        assert_eq!(decode(Bytes::from_static(text), 10).unwrap(), text.to_vec());
        let packed = Bytes::from(gzip(text));
        assert_eq!(decode(packed.clone(), text.len()).unwrap(), text.to_vec());
        assert_eq!(
            decode(packed, text.len() - 1),
            Err(FetchFailure::DecompressedTooLarge {
                limit: text.len() - 1
            })
        );
        assert_eq!(
            decode(Bytes::from_static(&[0x1f, 0x8b, 0, 0]), 100),
            Err(FetchFailure::BadGzip("unexpected end of file".into()))
        );
    }
}
