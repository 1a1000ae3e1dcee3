//! A small async HTTPS client for end-to-end tests that need more than `curl` can give cheaply:
//! many concurrent writers on kept-alive connections, and watches read event by event as they
//! arrive.
//!
//! It authenticates like kubectl does with the admin kubeconfig (the client certificate in
//! `DATA_DIR/tls/admin.{crt,key}`, the server checked against `DATA_DIR/tls/ca.crt`) and speaks
//! HTTP/1.1, one request at a time per connection. Idle connections are kept in a pool and
//! reused; a connection that broke (the server was killed or restarted) is dropped and the next
//! request dials a new one, so one [`Http`] survives any number of server restarts on the same
//! address.
//!
//! Guarantees the tests rely on:
//! * A request never hangs: connecting, sending and reading the whole answer share one deadline
//!   ([`Http::timeout`]); when it passes the request fails with [`HttpError::Timeout`].
//! * `Err` means no complete answer arrived: the request may or may not have taken effect.
//!   `Ok` carries whatever status the server answered, so a test decides what a code means.
//! * A watch ([`Http::watch`]) runs on a connection of its own (never pooled) and yields one
//!   parsed JSON object per line of the stream, in the order the server sent them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

pub use http::Method;

/// How long a request may take, connection included, unless a test says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("reading the test credentials {}: {why}", path.display())]
    Credentials { path: PathBuf, why: String },
    #[error("connecting to {addr}: {why}")]
    Connect { addr: SocketAddr, why: String },
    #[error("{method} {path}: {why}")]
    Transport {
        method: Method,
        path: String,
        why: String,
    },
    #[error("{method} {path}: no complete answer within {timeout:?}")]
    Timeout {
        method: Method,
        path: String,
        timeout: Duration,
    },
    #[error("{what} is not JSON ({why}): {text}")]
    NotJson {
        what: String,
        why: String,
        text: String,
    },
}

/// A complete answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::NotJson {
            what: format!("an HTTP {} answer", self.status),
            why: e.to_string(),
            text: self.text(),
        })
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Sender = SendRequest<Full<Bytes>>;

/// An HTTPS client for one keelson server address.
pub struct Http {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<Sender>>,
    /// Deadline of one request (connect, send, read the whole body).
    pub timeout: Duration,
}

fn read_file(path: &Path) -> Result<Vec<u8>, HttpError> {
    std::fs::read(path).map_err(|e| HttpError::Credentials {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn bad_credentials(path: &Path, why: impl ToString) -> HttpError {
    HttpError::Credentials {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

impl Http {
    /// A client for the server at `addr` whose data directory (certificates) is `data_dir`.
    pub fn new(data_dir: &Path, addr: SocketAddr) -> Result<Http, HttpError> {
        let tls_dir = data_dir.join("tls");
        let ca_path = tls_dir.join("ca.crt");
        let cert_path = tls_dir.join("admin.crt");
        let key_path = tls_dir.join("admin.key");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&read_file(&ca_path)?) {
            let cert = cert.map_err(|e| bad_credentials(&ca_path, e))?;
            roots.add(cert).map_err(|e| bad_credentials(&ca_path, e))?;
        }
        let certs = CertificateDer::pem_slice_iter(&read_file(&cert_path)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_credentials(&cert_path, e))?;
        let key = PrivateKeyDer::from_pem_slice(&read_file(&key_path)?)
            .map_err(|e| bad_credentials(&key_path, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad_credentials(&tls_dir, e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| bad_credentials(&key_path, e))?;
        Ok(Http {
            addr,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            idle: Mutex::new(Vec::new()),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client for a [`super::Cluster`] (same certificates and address across its restarts).
    pub fn for_cluster(c: &super::Cluster) -> Arc<Http> {
        Arc::new(Http::new(c.data_dir(), c.addr).expect("the cluster's admin credentials"))
    }

    /// This client with another request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Http {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Dials a new TLS connection and starts its HTTP/1.1 driver.
    async fn connect(&self) -> Result<Sender, HttpError> {
        let failed = |why: String| HttpError::Connect {
            addr: self.addr,
            why,
        };
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| failed(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS handshake: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| failed(format!("HTTP handshake: {e}")))?;
        // The driver ends when the connection does; its error shows up on the request side.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// An idle pooled connection that is still usable, or a new one.
    async fn checkout(&self) -> Result<Sender, HttpError> {
        loop {
            let candidate = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut sender) = candidate else {
                return self.connect().await;
            };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
    }

    fn checkin(&self, sender: Sender) {
        if !sender.is_closed()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(sender);
        }
    }

    fn build(
        &self,
        method: &Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<http::Request<Full<Bytes>>, HttpError> {
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
            .header(http::header::ACCEPT, "application/json");
        let bytes = match body {
            Some((bytes, content_type)) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        req.body(Full::new(bytes))
            .map_err(|e| HttpError::Transport {
                method: method.clone(),
                path: path.to_string(),
                why: format!("building the request: {e}"),
            })
    }

    /// One request, answered in full. `body` is the bytes and their content type.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> Result<Reply, HttpError> {
        let req = self.build(&method, path, body)?;
        let exchange = async {
            let mut sender = self.checkout().await?;
            let transport = |e: hyper::Error| HttpError::Transport {
                method: method.clone(),
                path: path.to_string(),
                why: e.to_string(),
            };
            let resp = sender.send_request(req).await.map_err(transport)?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(transport)?;
            self.checkin(sender);
            Ok(Reply {
                status,
                body: body.to_bytes(),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout {
                method,
                path: path.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Reply, HttpError> {
        self.request(Method::GET, path, None).await
    }

    /// A request with a JSON body.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Reply, HttpError> {
        let bytes = Bytes::from(body.to_string());
        self.request(method, path, Some((bytes, "application/json")))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Reply, HttpError> {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Result<Reply, HttpError> {
        self.send_json(Method::PUT, path, body).await
    }

    /// A JSON merge patch (`application/merge-patch+json`).
    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Reply, HttpError> {
        let bytes = Bytes::from(patch.to_string());
        self.request(
            Method::PATCH,
            path,
            Some((bytes, "application/merge-patch+json")),
        )
        .await
    }

    /// DELETE, with `DeleteOptions` when given.
    pub async fn delete(&self, path: &str, options: Option<&Value>) -> Result<Reply, HttpError> {
        match options {
            Some(o) => self.send_json(Method::DELETE, path, o).await,
            None => self.request(Method::DELETE, path, None).await,
        }
    }

    /// Opens a watch (`path` carries `watch=true` and the rest of the query). Only the response
    /// head is awaited (within [`Http::timeout`]); read the events with [`Watch::next`].
    pub async fn watch(&self, path: &str) -> Result<Watch, HttpError> {
        let req = self.build(&Method::GET, path, None)?;
        let open = async {
            let mut sender = self.connect().await?;
            sender
                .send_request(req)
                .await
                .map_err(|e| HttpError::Transport {
                    method: Method::GET,
                    path: path.to_string(),
                    why: e.to_string(),
                })
        };
        let resp = match tokio::time::timeout(self.timeout, open).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(HttpError::Timeout {
                    method: Method::GET,
                    path: path.to_string(),
                    timeout: self.timeout,
                });
            }
        };
        Ok(Watch {
            status: resp.status().as_u16(),
            path: path.to_string(),
            body: resp.into_body(),
            buf: Vec::new(),
            ended: false,
        })
    }
}

/// An open watch stream.
pub struct Watch {
    /// The HTTP status of the answer (200 for a watch that started, even one whose only event
    /// is an ERROR).
    pub status: u16,
    path: String,
    body: Incoming,
    /// Bytes received but not yet part of a complete line.
    buf: Vec<u8>,
    ended: bool,
}

impl Watch {
    /// The next event (one JSON line), `Ok(None)` once the server ended the stream cleanly,
    /// `Err` when the connection broke or a line is not JSON.
    pub async fn next(&mut self) -> Result<Option<Value>, HttpError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = &line[..line.len() - 1];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_line(line, &self.path).map(Some);
            }
            if self.ended {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return parse_line(&rest, &self.path).map(Some);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(HttpError::Transport {
                        method: Method::GET,
                        path: self.path.clone(),
                        why: e.to_string(),
                    });
                }
                None => self.ended = true,
            }
        }
    }

    /// Reads the rest of the stream as text (for a watch that was refused with a Status).
    pub async fn into_text(mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.buf).into_owned();
        while let Some(Ok(frame)) = self.body.frame().await {
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        text
    }
}

fn parse_line(line: &[u8], path: &str) -> Result<Value, HttpError> {
    serde_json::from_slice(line).map_err(|e| HttpError::NotJson {
        what: format!("a line of the watch {path}"),
        why: e.to_string(),
        text: String::from_utf8_lossy(line).into_owned(),
    })
}

/// `metadata.resourceVersion` of an object, as a number.
pub fn resource_version(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}
