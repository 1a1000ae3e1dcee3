//! HTTPS serving: rustls with HTTP/2 and HTTP/1.1 by ALPN, client-certificate authentication,
//! one task per connection.
//!
//! Client certificates are *requested*, not required: a TLS handshake without one succeeds so
//! that the request can be answered with a proper 401 `Status` (and `/version`, `/healthz`
//! stay reachable, as upstream allows anonymously). A certificate that does not chain to the
//! cluster CA fails the handshake.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::handler::{Api, UserInfo};

/// A handshake that has not finished in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} PEM: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("the TLS configuration was rejected: {0}")]
    Config(String),
}

/// PEM-encoded TLS material of the server.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA that signs client certificates (and the serving certificate).
    pub client_ca_pem: Vec<u8>,
    /// The serving certificate chain and its key.
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Builds the rustls server configuration.
pub fn tls_config(m: &TlsMaterial) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&m.client_ca_pem) {
        let c = c.map_err(|e| TlsError::Pem {
            what: "client CA",
            reason: e.to_string(),
        })?;
        roots.add(c).map_err(|e| TlsError::Pem {
            what: "client CA",
            reason: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&m.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "serving certificate",
            reason: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(&m.key_pem).map_err(|e| TlsError::Pem {
        what: "serving key",
        reason: e.to_string(),
    })?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The user a verified client certificate names: CN is the user, each O a group (upstream's
/// x509 authenticator).
pub fn user_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".to_string());
    Some(UserInfo { name, groups })
}

/// Accepts connections until the listener fails.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, api: Arc<Api>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| user_from_cert(c.as_ref()));
            let service = service_fn(move |req| {
                let api = api.clone();
                let user = user.clone();
                async move { Ok::<_, Infallible>(api.handle(req, user).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
