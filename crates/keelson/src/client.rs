//! A small HTTPS client for keelson's own commands: reads a kubeconfig (embedded or file
//! certificates, as `keelson server` writes them) and makes authenticated GETs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    item: T,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority", default)]
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data", default)]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data", default)]
    key_data: Option<String>,
    #[serde(rename = "client-certificate", default)]
    cert_file: Option<PathBuf>,
    #[serde(rename = "client-key", default)]
    key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct KubeContext {
    cluster: String,
    user: String,
}

#[derive(Deserialize)]
struct KubeConfig {
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<KubeContext>>,
    #[serde(rename = "current-context")]
    current_context: String,
}

/// An authenticated connection target.
pub struct Client {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

/// The kubeconfig to use: `--kubeconfig`, else `$KUBECONFIG`, else the default data dir's.
pub fn kubeconfig_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/keelson/kubeconfig.yaml"))
}

fn pem_bytes(data: &Option<String>, file: &Option<PathBuf>, what: &str) -> anyhow::Result<Vec<u8>> {
    match (data, file) {
        (Some(d), _) => base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .with_context(|| format!("the kubeconfig's {what} data is not base64")),
        (None, Some(f)) => {
            std::fs::read(f).with_context(|| format!("reading the {what} {}", f.display()))
        }
        (None, None) => bail!(
            "the kubeconfig has no {what}; keelson commands authenticate with client certificates"
        ),
    }
}

impl Client {
    pub fn from_kubeconfig(path: &Path) -> anyhow::Result<Client> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading kubeconfig {} (pass --kubeconfig or set KUBECONFIG)",
                path.display()
            )
        })?;
        let cfg: KubeConfig = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing kubeconfig {}", path.display()))?;
        let ctx = cfg
            .contexts
            .iter()
            .find(|c| c.name == cfg.current_context)
            .ok_or_else(|| {
                anyhow!(
                    "kubeconfig {}: current context {:?} is not defined",
                    path.display(),
                    cfg.current_context
                )
            })?;
        let cluster = cfg
            .clusters
            .iter()
            .find(|c| c.name == ctx.item.cluster)
            .ok_or_else(|| {
                anyhow!(
                    "kubeconfig {}: cluster {:?} is not defined",
                    path.display(),
                    ctx.item.cluster
                )
            })?;
        let user = cfg
            .users
            .iter()
            .find(|u| u.name == ctx.item.user)
            .ok_or_else(|| {
                anyhow!(
                    "kubeconfig {}: user {:?} is not defined",
                    path.display(),
                    ctx.item.user
                )
            })?;
        let url: http::Uri = cluster
            .item
            .server
            .parse()
            .with_context(|| format!("server URL {:?}", cluster.item.server))?;
        if url.scheme_str() != Some("https") {
            bail!("server {} is not https://", cluster.item.server);
        }
        let host = url
            .host()
            .ok_or_else(|| anyhow!("server {} has no host", cluster.item.server))?
            .to_string();
        let port = url.port_u16().unwrap_or(443);

        let mut roots = rustls::RootCertStore::empty();
        let ca = pem_bytes(
            &cluster.item.ca_data,
            &cluster.item.ca_file,
            "certificate authority",
        )?;
        for c in CertificateDer::pem_slice_iter(&ca) {
            roots
                .add(c.context("bad CA certificate")?)
                .context("unusable CA certificate")?;
        }
        let cert = pem_bytes(
            &user.item.cert_data,
            &user.item.cert_file,
            "client certificate",
        )?;
        let key = pem_bytes(&user.item.key_data, &user.item.key_file, "client key")?;
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .context("bad client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(&key).context("bad client key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .context("the client certificate and key do not match")?;
        Ok(Client {
            host,
            port,
            tls: Arc::new(tls),
        })
    }

    /// GETs `path_and_query` and returns the status and body.
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<(u16, Bytes)> {
        let addr = format!("{}:{}", self.host.trim_matches(['[', ']']), self.port);
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connecting to {addr} (is keelson server running?)"))?;
        let name = ServerName::try_from(self.host.trim_matches(['[', ']']).to_string())
            .context("server name")?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = http::Request::get(path_and_query)
            .header(http::header::HOST, &self.host)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("GET {path_and_query}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
