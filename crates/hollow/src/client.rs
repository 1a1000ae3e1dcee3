//! One kube-rs client over a single HTTP/2 connection, shared by every hollow node: thousands
//! of concurrent heartbeats and the pod watch become streams of one TLS connection rather than
//! a pool of sockets (kube-rs' default client speaks HTTP/1.1 only).

use std::path::Path;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("setting up the client from the kubeconfig: {0}")]
    Setup(#[from] kube::Error),
}

/// A client for the cluster the kubeconfig at `path` names (its current context).
pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let wrap = |source| ClientError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(wrap)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(wrap)?;
    from_config(config)
}

/// An HTTP/2 client for `config`: its server, TLS identity, credentials and headers.
pub fn from_config(config: kube::Config) -> Result<kube::Client, ClientError> {
    // kube-rs asks rustls for the process-wide provider; install ring's unless someone has
    // already installed one (the error then only says so).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http);
    let transport = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        // The auth layer's errors are boxed; the transport's must be too.
        .map_err(tower::BoxError::from)
        .service(transport);
    Ok(kube::Client::new(service, config.default_namespace))
}
