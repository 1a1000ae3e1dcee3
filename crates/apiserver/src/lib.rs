//! keelson's API server: Kubernetes' REST API over a [`KvStore`], served over HTTPS.
//!
//! ```text
//! request ─▶ server (TLS, client-cert authn) ─▶ handler (route, negotiate, check body)
//!         ─▶ storage::ResourceStore (generic verbs) ─▶ registry strategy ─▶ KvStore
//!                       ▲ lists & watches from watchcache::WatchCache ◀─ one store watch
//! ```
//!
//! Every resource is served by the same generic code; what differs lives in the `registry`
//! crate's strategies. Startup is: build one store and watch cache per stored resource, open
//! the listener at once (so `/livez` answers within milliseconds), wait for the caches to
//! sync, rebuild allocators from what is stored, create the built-in namespaces and the
//! `kubernetes` Service, then report ready on `/readyz`.

pub mod admission;
pub mod cached;
pub mod codec;
pub mod discovery;
pub mod filter;
pub mod handler;
pub mod history;
pub mod object;
pub mod patching;
pub mod pod_subresources;
pub mod record;
pub mod render;
pub mod request;
pub mod response;
pub mod scale;
pub mod server;
pub mod storage;
pub mod watchcache;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::resources::RESOURCES;
use serde_json::json;
use store::KvStore;

use crate::handler::Api;
use crate::request::{FieldValidation, WriteOptions};
use crate::storage::ResourceStore;
use crate::watchcache::WatchCache;

pub use server::TlsMaterial;

/// Namespaces that exist from the start, as on every Kubernetes cluster.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How often watchers are told the cache's progress (drives bookmarks).
const PROGRESS_TICK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// `host:port` clients should use (discovery's serverAddressByClientCIDRs, the
    /// `kubernetes` Service's port).
    pub advertise: SocketAddr,
    pub tls: TlsMaterial,
    pub registry: registry::Config,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    #[error(
        "cannot listen on {addr}: {source} (is another keelson or kube-apiserver running? choose another --bind)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the watch caches did not sync within {0:?}: {1}")]
    CacheSync(Duration, String),
    #[error("creating built-in object {what}: {error}")]
    Bootstrap { what: String, error: api::ApiError },
}

/// A running API server.
pub struct Server {
    pub api: Arc<Api>,
    pub local_addr: SocketAddr,
}

/// Builds the stores, starts serving, and returns once the server is ready.
pub async fn start(config: Config, kv: Arc<dyn KvStore>) -> Result<Server, StartError> {
    let tls = server::tls_config(&config.tls)?;

    // One store (and cache) per storage prefix; versions sharing storage share it.
    let ns_info = api::resources::lookup("", "v1", "namespaces").unwrap_or(&RESOURCES[0]);
    let ns_cache = WatchCache::new(ns_info);
    let mut by_prefix: Vec<(String, Arc<ResourceStore>)> = Vec::new();
    let mut stores = Vec::with_capacity(RESOURCES.len());
    for info in RESOURCES {
        let storage = registry::storage_info(info);
        let prefix = storage.storage_prefix();
        if let Some((_, s)) = by_prefix.iter().find(|(p, _)| *p == prefix) {
            stores.push(s.clone());
            continue;
        }
        let is_ns = std::ptr::eq(storage, ns_info);
        let cache = if is_ns {
            ns_cache.clone()
        } else {
            WatchCache::new(storage)
        };
        let strategy = registry::strategy_for(storage, &config.registry);
        let s = Arc::new(ResourceStore::new(
            storage,
            strategy,
            kv.clone(),
            cache,
            (!is_ns).then(|| ns_cache.clone()),
        ));
        by_prefix.push((prefix, s.clone()));
        stores.push(s);
    }
    let api = Arc::new(Api::new(stores, kv.clone(), config.advertise.to_string()));
    for s in api.distinct_stores() {
        tokio::spawn(s.cache.clone().run(kv.clone()));
    }
    let caches: Vec<Arc<WatchCache>> = api
        .distinct_stores()
        .iter()
        .map(|s| s.cache.clone())
        .collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROGRESS_TICK);
        loop {
            tick.tick().await;
            for c in &caches {
                c.tick();
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let local_addr = listener.local_addr().unwrap_or(config.bind);
    tokio::spawn(server::serve(listener, tls, api.clone()));

    let sync_timeout = Duration::from_secs(60);
    let started = std::time::Instant::now();
    for s in api.distinct_stores() {
        let left = sync_timeout.saturating_sub(started.elapsed());
        s.cache.wait_for(0, left).await.map_err(|e| {
            StartError::CacheSync(sync_timeout, format!("{}: {}", s.info.plural, e.message))
        })?;
    }
    for s in api.distinct_stores() {
        s.observe_existing();
    }
    bootstrap(&api, &config).await?;
    api.set_ready();
    tracing::info!(addr = %local_addr, elapsed_ms = started.elapsed().as_millis() as u64, "API server ready");
    Ok(Server { api, local_addr })
}

/// Creates what every cluster has from the start, if missing.
async fn bootstrap(api: &Api, config: &Config) -> Result<(), StartError> {
    let opts = WriteOptions {
        dry_run: false,
        field_validation: FieldValidation::Strict,
        field_manager: "keelson".into(),
        user: "system:apiserver".into(),
    };
    let ns_info = api::resources::lookup("", "v1", "namespaces").unwrap_or(&RESOURCES[0]);
    let namespaces = api.store_for(ns_info);
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        match namespaces.create("", obj, &opts).await {
            Ok(_) => tracing::info!(namespace = ns, "created namespace"),
            Err(e) if e.reason == api::Reason::AlreadyExists => {}
            Err(error) => {
                return Err(StartError::Bootstrap {
                    what: format!("namespace {ns}"),
                    error,
                });
            }
        }
    }
    // The built-in PriorityClasses every cluster has (upstream's apiserver creates them too).
    if let Some(pc_info) = api::resources::lookup("scheduling.k8s.io", "v1", "priorityclasses") {
        let classes = api.store_for(pc_info);
        for (name, value, global_default) in registry::other::priorityclasses::SYSTEM_CLASSES {
            let obj = json!({
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": { "name": name },
                "value": value,
                "globalDefault": global_default,
                "description": "Used for system critical pods that must not be moved from their current node.",
            });
            match classes.create("", obj, &opts).await {
                Ok(_) => tracing::info!(priority_class = name, "created priority class"),
                Err(e) if e.reason == api::Reason::AlreadyExists => {}
                Err(error) => {
                    return Err(StartError::Bootstrap {
                        what: format!("priority class {name}"),
                        error,
                    });
                }
            }
        }
    }
    let svc_info = api::resources::lookup("", "v1", "services").unwrap_or(&RESOURCES[0]);
    let services = api.store_for(svc_info);
    let (net, _) = config.registry.service_cidr;
    let first = std::net::Ipv4Addr::from(u32::from(net).wrapping_add(1));
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": first.to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": config.advertise.port() }],
            "sessionAffinity": "None",
        },
    });
    // Check first: a create of the existing Service would fail on its taken cluster IP
    // before it could report AlreadyExists.
    if services.get("default", "kubernetes").await.is_ok() {
        return Ok(());
    }
    match services.create("default", svc, &opts).await {
        Ok(_) => tracing::info!("created service default/kubernetes"),
        Err(e) if e.reason == api::Reason::AlreadyExists => {}
        Err(error) => {
            return Err(StartError::Bootstrap {
                what: "service default/kubernetes".into(),
                error,
            });
        }
    }
    Ok(())
}
