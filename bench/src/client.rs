//! The load generator's HTTPS client: one TLS connection per simulated client, HTTP/1.1 with
//! keep-alive, presenting the admin certificate the server wrote into its data directory.
//!
//! It is deliberately thin (hyper's connection API, no pool, no retries): every request goes
//! out on the caller's own connection, so N clients are exactly N connections, and a failed
//! request is reported, not hidden behind a reconnect. Header values are static and bodies are
//! shared `Bytes`, so a request costs the server's work, not the client's allocations.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("the TLS client configuration was rejected: {0}")]
    TlsConfig(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static AGENT: HeaderValue = HeaderValue::from_static("keelson-bench");

/// Where and how to connect: the server address and a TLS configuration trusting its CA.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    host: HeaderValue,
}

impl Target {
    /// Reads `ca.crt`, `admin.crt` and `admin.key` from `tls_dir` (the server's `DIR/tls`).
    pub fn load(addr: SocketAddr, tls_dir: &Path) -> Result<Target, ClientError> {
        let read = |name: &str| {
            let path = tls_dir.join(name);
            std::fs::read(&path).map_err(|e| ClientError::Pem {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let pem_err = |name: &str, e: &dyn std::fmt::Display| ClientError::Pem {
            path: tls_dir.join(name).display().to_string(),
            reason: e.to_string(),
        };
        let ca = read("ca.crt")?;
        let mut roots = rustls::RootCertStore::empty();
        let mut any = false;
        for c in CertificateDer::pem_slice_iter(&ca) {
            roots
                .add(c.map_err(|e| pem_err("ca.crt", &e))?)
                .map_err(|e| pem_err("ca.crt", &e))?;
            any = true;
        }
        if !any {
            return Err(pem_err("ca.crt", &"no certificate in the file"));
        }
        let certs = CertificateDer::pem_slice_iter(&read("admin.crt")?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err("admin.crt", &e))?;
        if certs.is_empty() {
            return Err(pem_err("admin.crt", &"no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_slice(&read("admin.key")?)
            .map_err(|e| pem_err("admin.key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::TlsConfig(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| ClientError::TlsConfig(e.to_string()))?;
        // One connection per client is the point of the benchmark: stay on HTTP/1.1 so that
        // nothing multiplexes behind our back.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host = HeaderValue::from_str(&addr.to_string())
            .map_err(|e| ClientError::TlsConfig(e.to_string()))?;
        Ok(Target {
            addr,
            connector: TlsConnector::from(Arc::new(cfg)),
            server_name: ServerName::from(addr.ip()),
            host,
        })
    }

    /// Opens one keep-alive connection.
    pub async fn connect(&self) -> Result<Conn, ClientError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: self.addr,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Handshake {
                addr: self.addr,
                source,
            })?;
        let (sender, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped; an error here shows up as a
            // failed request on the sender side, which is where it is counted.
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: self.host.clone(),
        })
    }
}

/// One HTTP/1.1 connection; requests on it are sequential.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    /// Sends a request and returns the response with its body still streaming (for watches).
    pub async fn send(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.host.clone())
            .header(ACCEPT, JSON.clone())
            .header(USER_AGENT, AGENT.clone());
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, JSON.clone());
        }
        let req = builder.body(Full::new(body))?;
        self.sender.ready().await?;
        Ok(self.sender.send_request(req).await?)
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let resp = self.send(method, uri, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    pub async fn get(&mut self, uri: Uri) -> Result<(StatusCode, Bytes), ClientError> {
        self.call(Method::GET, uri, Bytes::new()).await
    }
}

/// Parses a path (or path and query) the bench built itself.
pub fn uri(path_and_query: &str) -> Uri {
    // Every caller passes a literal-built ASCII path; a failure is a bug in the bench.
    Uri::try_from(path_and_query)
        .unwrap_or_else(|e| panic!("bench built a bad URI {path_and_query:?}: {e}"))
}

/// A short excerpt of a response body for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.chars().count() > 300 {
        format!("{}…", t.chars().take(300).collect::<String>())
    } else {
        t.to_string()
    }
}
