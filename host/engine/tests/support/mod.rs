//! Helpers shared by the engine's integration tests: real programs from PATH,
//! certificates made by the `openssl` command, and a small HTTP server on 127.0.0.1 (the
//! thing the engine's real client talks to). Each test binary uses part of this module.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The program in PATH, or a failure that says which Debian package to install.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: these tests need the real binary. Install the \
                 Debian package: apt-get install -y {package}"
            )
        })
}

/// Makes a CA and a `localhost` / 127.0.0.1 certificate it signed, with `openssl`.
pub fn make_certificates(dir: &Path) {
    let openssl = require_binary("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=patchwave test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
}

pub fn tls_acceptor(dir: &Path) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One answer of the test server.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Without `Content-Length`, the body ends when the connection closes.
    pub content_length: bool,
    /// How long to wait before answering.
    pub delay: Duration,
}

type Routes = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A hand-written HTTP/1.1 server on 127.0.0.1 answering one request per connection,
/// stopped on drop. It logs each request's path and `User-Agent`.
pub struct TestServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(routes: impl Fn(&str) -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::start_with_tls(routes, None).await
    }

    pub async fn start_with_tls(
        routes: impl Fn(&str) -> Reply + Send + Sync + 'static,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes: Routes = Arc::new(routes);
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, log, tls) = (Arc::clone(&routes), Arc::clone(&log), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, routes, log).await;
                            }
                        }
                        None => serve(stream, routes, log).await,
                    }
                });
            }
        });
        TestServer {
            port,
            requests,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The paths asked for, in order.
    pub fn paths(&self) -> Vec<String> {
        let log = self.requests.lock().unwrap();
        log.iter().map(|(path, _)| path.clone()).collect()
    }

    /// The paths asked for, sorted (for requests sent concurrently).
    pub fn sorted_paths(&self) -> Vec<String> {
        let mut paths = self.paths();
        paths.sort();
        paths
    }

    pub fn user_agents(&self) -> Vec<String> {
        let log = self.requests.lock().unwrap();
        log.iter().map(|(_, agent)| agent.clone()).collect()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    routes: Routes,
    log: Arc<Mutex<Vec<(String, String)>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let agent = head
        .lines()
        .find_map(|l| l.strip_prefix("user-agent: "))
        .unwrap_or("")
        .to_string();
    log.lock().unwrap().push((path.clone(), agent));
    let r = routes(&path);
    tokio::time::sleep(r.delay).await;
    let mut response = format!("HTTP/1.1 {} Test\r\nConnection: close\r\n", r.status);
    for (name, value) in &r.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    if r.content_length {
        response.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    response.push_str("\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(&r.body).await;
    let _ = stream.shutdown().await;
}
