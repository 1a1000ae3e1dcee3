//! The REST layer: routes a request, checks scope and body, and runs the verb against the
//! generic store, converting between the served version and storage at the edges.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api::ApiError;
use api::resources::{RESOURCES, ResourceInfo};
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, header};
use serde_json::{Value, json};
use store::KvStore;

use crate::codec::{self, BodyType, Output};
use crate::filter::Filter;
use crate::object;
use crate::render::{self, View};
use crate::request::{
    self, FieldValidation, ListOptions, Query, ResourceRequest, Route, Verb, WriteOptions,
};
use crate::response::{self, Body};
use crate::storage::{DeleteOptions, Deleted, ResourceStore, Subresource};
use crate::watchcache::{CacheEvent, CachedObject, EventType, WatchItem};

/// Who is asking (from the client certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// Bookmarks are sent at most this often.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The API: one generic store per stored resource, and everything that routes to them.
pub struct Api {
    /// Indexed like [`RESOURCES`]; versions sharing storage share the store.
    stores: Vec<Arc<ResourceStore>>,
    kv: Arc<dyn KvStore>,
    ready: AtomicBool,
    server_address: String,
}

/// What a write's request body and parameters are.
struct WriteRequest<'a> {
    served: &'static ResourceInfo,
    store: &'a ResourceStore,
    view: View,
    ns: &'a str,
    name: &'a str,
    query: &'a Query,
    content_type: Option<&'a str>,
    body: Bytes,
    /// The authenticated user (recorded with each write).
    user: &'a str,
}

impl Api {
    pub fn new(
        stores: Vec<Arc<ResourceStore>>,
        kv: Arc<dyn KvStore>,
        server_address: String,
    ) -> Api {
        Api {
            stores,
            kv,
            ready: AtomicBool::new(false),
            server_address,
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// The store serving `info` (any served version of it).
    pub fn store_for(&self, info: &'static ResourceInfo) -> &Arc<ResourceStore> {
        let i = RESOURCES
            .iter()
            .position(|r| std::ptr::eq(r, info))
            .unwrap_or(0);
        &self.stores[i]
    }

    /// Every distinct store (one per storage prefix).
    pub fn distinct_stores(&self) -> Vec<Arc<ResourceStore>> {
        let mut out: Vec<Arc<ResourceStore>> = Vec::new();
        for s in &self.stores {
            if !out.iter().any(|o| Arc::ptr_eq(o, s)) {
                out.push(s.clone());
            }
        }
        out
    }

    /// Serves one request. `user` is `None` for a request without a valid client certificate.
    pub async fn handle<B>(&self, req: Request<B>, user: Option<UserInfo>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let query = Query::parse(parts.uri.query());
        let watch = query.flag("watch").unwrap_or(false);
        let route = request::route(&parts.method, parts.uri.path(), watch);
        let public = matches!(route, Route::Version | Route::Health(_));
        if user.is_none() && !public {
            // Read (and drop) what the client is sending first: answering mid-upload makes
            // HTTP/1.1 clients see a reset connection instead of the 401.
            let _ = codec::read_body(body).await;
            return response::error(&ApiError::unauthorized());
        }
        let started = std::time::Instant::now();
        let who = user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
        let result = self.route(route, &parts, &query, body, who).await;
        let resp = result.unwrap_or_else(|e| response::error(&e));
        let status = resp.status().as_u16();
        if status >= 500 {
            tracing::warn!(method = %parts.method, path = %parts.uri.path(), status, "request failed");
        } else {
            tracing::debug!(method = %parts.method, uri = %parts.uri, status, elapsed_us = started.elapsed().as_micros() as u64, "request");
        }
        resp
    }

    async fn route<B>(
        &self,
        route: Route,
        parts: &Parts,
        query: &Query,
        body: B,
        user: &str,
    ) -> Result<Response<Body>, ApiError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        match route {
            Route::Resource(rr) => {
                let bytes = match rr.verb {
                    Verb::Create
                    | Verb::Update
                    | Verb::Patch
                    | Verb::Delete
                    | Verb::DeleteCollection => codec::read_body(body).await?,
                    _ => Bytes::new(),
                };
                self.resource(rr, parts, query, bytes, user).await
            }
            Route::Version => Ok(response::json(200, &version())),
            Route::Health(check) => Ok(self.health(&check, query)),
            Route::LegacyVersions => match codec::negotiate(accept)? {
                Output::DiscoveryV2 => Ok(response::bytes(
                    200,
                    codec::content_type(Output::DiscoveryV2),
                    crate::discovery::aggregated_bytes(true),
                )),
                _ => Ok(response::json(
                    200,
                    &crate::discovery::legacy_versions(&self.server_address),
                )),
            },
            Route::Groups => match codec::negotiate(accept)? {
                Output::DiscoveryV2 => Ok(response::bytes(
                    200,
                    codec::content_type(Output::DiscoveryV2),
                    crate::discovery::aggregated_bytes(false),
                )),
                _ => Ok(response::json(200, &crate::discovery::group_list())),
            },
            Route::Group(g) => crate::discovery::group(&g)
                .map(|v| response::json(200, &v))
                .ok_or_else(ApiError::no_route),
            Route::Resources { group, version } => {
                crate::discovery::resource_list(&group, &version)
                    .map(|v| response::json(200, &v))
                    .ok_or_else(ApiError::no_route)
            }
            Route::OpenApi => {
                // The first request builds the documents (a fraction of a second of CPU):
                // keep that off the async workers.
                let (uri, headers) = (parts.uri.clone(), parts.headers.clone());
                let answer = tokio::task::spawn_blocking(move || openapi::respond(&uri, &headers))
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("building the OpenAPI document: {e}"))
                    })?;
                match answer {
                    Some(Ok(resp)) => Ok(resp.map(response::full)),
                    Some(Err(e)) => Err(ApiError::from(e)),
                    None => Err(ApiError::no_route()),
                }
            }
            Route::History => Ok(response::json(
                200,
                &crate::history::history(self, query).await?,
            )),
            Route::NotFound => Err(ApiError::no_route()),
        }
    }

    fn health(&self, check: &str, query: &Query) -> Response<Body> {
        let ready = self.is_ready();
        let ok = !check.starts_with("readyz") || ready || check == "readyz/ping";
        if query.get("verbose").is_some() {
            let sync = if ready {
                "[+]informer-sync ok"
            } else {
                "[-]informer-sync failed: watch caches are not synced yet"
            };
            let body = format!(
                "[+]ping ok\n[+]etcd ok\n{sync}\n{} check {}\n",
                check.split('/').next().unwrap_or(check),
                if ok { "passed" } else { "failed" }
            );
            return response::text(if ok { 200 } else { 500 }, body);
        }
        if ok {
            response::text(200, "ok")
        } else {
            response::text(
                500,
                "[-]informer-sync failed: watch caches are not synced yet\nreadyz check failed\n",
            )
        }
    }

    async fn resource(
        &self,
        rr: ResourceRequest,
        parts: &Parts,
        query: &Query,
        body: Bytes,
        user: &str,
    ) -> Result<Response<Body>, ApiError> {
        let served = api::resources::lookup(&rr.group, &rr.version, &rr.resource)
            .ok_or_else(ApiError::no_route)?;
        let store = self.store_for(served).clone();
        if !served.namespaced && !rr.namespace.is_empty() {
            return Err(ApiError::no_route());
        }
        if served.namespaced
            && rr.namespace.is_empty()
            && !matches!(rr.verb, Verb::List | Verb::Watch)
        {
            return Err(ApiError::no_route());
        }
        let sub = match rr.subresource.as_str() {
            "" => None,
            s if served.has_subresource(s) => Some(s),
            _ => return Err(ApiError::no_route()),
        };
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let output = codec::negotiate(accept)?;
        let include = match query.get("includeObject") {
            None | Some("" | "Metadata") => printers::IncludeObject::Metadata,
            Some("None") => printers::IncludeObject::None,
            Some("Object") => printers::IncludeObject::Object,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "includeObject: unsupported value {other:?}"
                )));
            }
        };
        let view = View {
            served,
            storage: store.info,
            output,
            include,
            pretty: query.flag("pretty").unwrap_or(false),
        };
        let ns = rr.namespace.as_str();
        let name = rr.name.as_str();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let write = WriteRequest {
            served,
            store: &store,
            view,
            ns,
            name,
            query,
            content_type,
            body,
            user,
        };
        match (rr.verb, sub) {
            (Verb::Get, None | Some("status")) => self.get(&store, view, ns, name, query).await,
            (Verb::Get, Some("scale")) => crate::scale::get(&store, view, ns, name).await,
            (Verb::List, None) => self.list(&store, view, ns, query).await,
            (Verb::Watch, None) => self.watch(&store, view, ns, query).await,
            (Verb::Create, None) => self.create(write).await,
            (Verb::Update, None) => self.update(write, Subresource::Main).await,
            (Verb::Update, Some("status")) => self.update(write, Subresource::Status).await,
            (Verb::Update, Some("finalize")) => self.update(write, Subresource::Finalize).await,
            (Verb::Update, Some("scale")) => crate::scale::update(&write.into_scale()).await,
            (Verb::Patch, None) => self.patch(write, Subresource::Main).await,
            (Verb::Patch, Some("status")) => self.patch(write, Subresource::Status).await,
            (Verb::Patch, Some("scale")) => crate::scale::patch(&write.into_scale()).await,
            (Verb::Create, Some("binding")) => {
                let opts = write.write_options()?;
                let (body, _) = decode_body(&write, &opts)?;
                let status = crate::pod_subresources::bind(
                    &store,
                    ns,
                    name,
                    &body,
                    write.user,
                    opts.dry_run,
                )
                .await?;
                Ok(response::json(201, &status))
            }
            (Verb::Create, Some("eviction")) => {
                let opts = write.write_options()?;
                let (body, _) = decode_body(&write, &opts)?;
                let pdb_info = api::resources::lookup("policy", "v1", "poddisruptionbudgets")
                    .ok_or_else(ApiError::no_route)?;
                let pdbs = self.store_for(pdb_info);
                let delete = DeleteOptions {
                    user: write.user.to_string(),
                    dry_run: opts.dry_run,
                    ..Default::default()
                };
                let status =
                    crate::pod_subresources::evict(&store, pdbs, pdb_info, ns, name, &body, delete)
                        .await?;
                Ok(response::json(201, &status))
            }
            (Verb::Delete, None) => self.delete(write).await,
            (Verb::DeleteCollection, None) => self.delete_collection(write).await,
            (verb, _) => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({} {}{})",
                verb.as_str(),
                served.plural,
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            ))),
        }
    }

    async fn get(
        &self,
        store: &ResourceStore,
        view: View,
        ns: &str,
        name: &str,
        query: &Query,
    ) -> Result<Response<Body>, ApiError> {
        let rv = query.get("resourceVersion").unwrap_or("");
        let obj = match request::parse_resource_version(rv)? {
            None if rv == "0" => store.get_cached(ns, name)?,
            None => store.get_encoded(ns, name).await?,
            Some(min) => {
                store.cache.wait_for(min, Duration::from_secs(3)).await?;
                store.get_cached(ns, name)?
            }
        };
        Ok(response::bytes(
            200,
            codec::content_type(view.output),
            view.cached_object(&obj)?,
        ))
    }

    async fn list(
        &self,
        store: &ResourceStore,
        view: View,
        ns: &str,
        query: &Query,
    ) -> Result<Response<Body>, ApiError> {
        let opts = ListOptions::from_query(query)?;
        let ns = Some(ns).filter(|n| !n.is_empty());
        let filter = Filter::new(
            view.served,
            view.storage,
            ns,
            &opts.label_selector,
            &opts.field_selector,
        )?;
        let page = store.list(ns, &opts, &filter).await?;
        let body = view.list(
            &page.items,
            page.resource_version,
            page.continue_token.as_deref(),
        )?;
        Ok(response::bytes(200, codec::content_type(view.output), body))
    }

    async fn watch(
        &self,
        store: &ResourceStore,
        view: View,
        ns: &str,
        query: &Query,
    ) -> Result<Response<Body>, ApiError> {
        let opts = ListOptions::from_query(query)?;
        let ns = Some(ns).filter(|n| !n.is_empty());
        let filter = Filter::new(
            view.served,
            view.storage,
            ns,
            &opts.label_selector,
            &opts.field_selector,
        )?;
        if opts.send_initial_events == Some(true) && !opts.allow_watch_bookmarks {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![api::FieldError::forbidden(
                    "allowWatchBookmarks",
                    "allowWatchBookmarks must be true when sendInitialEvents is set",
                )],
            ));
        }
        let sub = match store.watch(ns, &opts).await {
            Ok(s) => s,
            // Upstream answers a watch from a compacted revision with an ERROR event.
            Err(e) if e.code == 410 => {
                let (tx, resp) = response::stream("application/json");
                let _ = tx.try_send(render::error_frame(&e));
                return Ok(resp);
            }
            Err(e) => return Err(e),
        };
        let (tx, resp) = response::stream(codec::content_type(view.output));
        let timeout = match opts.timeout_seconds {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            // Upstream spreads watch lifetimes over [30m, 60m) so clients do not reconnect in step.
            _ => Duration::from_secs(1800 + rand::random_range(0..1800)),
        };
        let initial_end = opts.send_initial_events == Some(true);
        tokio::spawn(watch_loop(
            sub,
            tx,
            view,
            filter,
            opts.allow_watch_bookmarks,
            initial_end,
            timeout,
        ));
        Ok(resp)
    }

    /// Admission of a new pod that reads other objects (its PriorityClass).
    fn admit_pod(&self, pod: &mut Value) -> Result<(), ApiError> {
        let classes = api::resources::lookup("scheduling.k8s.io", "v1", "priorityclasses")
            .ok_or_else(|| ApiError::internal("the priorityclasses resource is not registered"))?;
        let (classes, _) = self.store_for(classes).cache.list(None, |_| true);
        crate::admission::pod_priority(pod, &classes)
    }

    async fn create(&self, w: WriteRequest<'_>) -> Result<Response<Body>, ApiError> {
        let opts = w.write_options()?;
        let (obj, mut warnings) = decode_body(&w, &opts)?;
        let mut obj = check_body(w.served, obj, w.ns, None)?;
        if w.served.group.is_empty() && w.served.plural == "pods" {
            self.admit_pod(&mut obj)?;
        }
        let stored = registry::convert::to_storage(w.served, obj)?;
        let result = w.store.create(w.ns, stored, &opts).await?;
        warnings.extend(result.warnings);
        let mut resp = response::bytes(
            201,
            codec::content_type(w.view.output),
            w.view.object(result.object)?,
        );
        response::add_warnings(&mut resp, &warnings);
        Ok(resp)
    }

    async fn update(
        &self,
        w: WriteRequest<'_>,
        sub: Subresource,
    ) -> Result<Response<Body>, ApiError> {
        let opts = w.write_options()?;
        let (obj, mut warnings) = decode_body(&w, &opts)?;
        let obj = check_body(w.served, obj, w.ns, Some(w.name))?;
        let stored = registry::convert::to_storage(w.served, obj)?;
        let result = w.store.update(w.ns, w.name, stored, sub, &opts).await?;
        warnings.extend(result.warnings);
        let code = if result.created { 201 } else { 200 };
        let mut resp = response::bytes(
            code,
            codec::content_type(w.view.output),
            w.view.object(result.object)?,
        );
        response::add_warnings(&mut resp, &warnings);
        Ok(resp)
    }

    async fn patch(
        &self,
        w: WriteRequest<'_>,
        sub: Subresource,
    ) -> Result<Response<Body>, ApiError> {
        let opts = w.write_options()?;
        let ty = BodyType::from_content_type(w.content_type)?;
        let doc = crate::patching::parse_patch(ty, &w.body)?;
        let served = w.served;
        let (ns, name) = (w.ns, w.name);
        let result = w
            .store
            .update_with(ns, name, sub, &opts, false, |current| {
                let target = registry::convert::from_storage(served, current.clone())?;
                let patched = crate::patching::apply(served, ty, &target, &doc)?;
                let mut patched = check_body(served, patched, ns, Some(name))?;
                // The current resourceVersion rides along in the patched object; only a
                // resourceVersion the patch itself changed is the client's precondition.
                if object::resource_version(&patched) == object::resource_version(&target) {
                    object::clear_resource_version(&mut patched);
                }
                registry::convert::to_storage(served, patched)
            })
            .await?;
        let mut resp = response::bytes(
            200,
            codec::content_type(w.view.output),
            w.view.object(result.object)?,
        );
        response::add_warnings(&mut resp, &result.warnings);
        Ok(resp)
    }

    async fn delete(&self, w: WriteRequest<'_>) -> Result<Response<Body>, ApiError> {
        let opts = delete_options(&w)?;
        match w.store.delete(w.ns, w.name, &opts).await? {
            Deleted::Gone(obj) => Ok(response::bytes(
                200,
                codec::content_type(w.view.output),
                w.view.object(obj)?,
            )),
            Deleted::Pending(obj) => Ok(response::bytes(
                202,
                codec::content_type(w.view.output),
                w.view.object(obj)?,
            )),
        }
    }

    async fn delete_collection(&self, w: WriteRequest<'_>) -> Result<Response<Body>, ApiError> {
        let opts = delete_options(&w)?;
        let list_opts = ListOptions::from_query(w.query)?;
        let ns = Some(w.ns).filter(|n| !n.is_empty());
        let filter = Filter::new(
            w.served,
            w.store.info,
            ns,
            &list_opts.label_selector,
            &list_opts.field_selector,
        )?;
        let (items, rv) = w.store.cache.list(ns, |o| filter.matches(o));
        // Each deleted object is kept in its encoded form for the response, not as a parsed
        // tree (~9 KB per pod as a tree, ~3 KB encoded: deleting 10,000 pods at once peaked
        // at 87 MB of trees, the largest item of the server's heap peak).
        let mut cached = Vec::new();
        for item in items {
            match w.store.delete(item.namespace(), item.name(), &opts).await {
                Ok(Deleted::Gone(obj) | Deleted::Pending(obj)) => {
                    cached.push(Arc::new(crate::watchcache::CachedObject::from_value(
                        w.store.info,
                        "",
                        &obj,
                        0,
                    )));
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let body = w.view.list(&cached, rv, None)?;
        Ok(response::bytes(
            200,
            codec::content_type(w.view.output),
            body,
        ))
    }
}

impl<'a> WriteRequest<'a> {
    /// The write parameters of the query, for this request's user.
    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let mut opts = WriteOptions::from_query(self.query)?;
        opts.user = self.user.to_string();
        Ok(opts)
    }

    fn into_scale(self) -> crate::scale::ScaleRequest<'a> {
        crate::scale::ScaleRequest {
            served: self.served,
            store: self.store,
            ns: self.ns,
            name: self.name,
            query: self.query,
            content_type: self.content_type,
            body: self.body,
            view: self.view,
            user: self.user,
        }
    }
}

/// `/version`: what `kubectl version` shows, and how `/usr/bin/kubectl` picks its minor.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": concat!("v1.33.0+keelson-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "keelson",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rustc",
        "compiler": "rustc",
        "platform": concat!("linux/", "amd64"),
    })
}

/// Decodes a write body per its content type and `fieldValidation`.
fn decode_body(
    w: &WriteRequest<'_>,
    opts: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let ty = BodyType::from_content_type(w.content_type)?;
    if !matches!(ty, BodyType::Json | BodyType::Yaml | BodyType::Protobuf) {
        return Err(ApiError::unsupported_media_type(
            w.content_type.unwrap_or(""),
        ));
    }
    if w.body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty: expected an object",
        ));
    }
    let strict = opts.field_validation == FieldValidation::Strict;
    let (v, dups) = codec::decode_object(&w.body, ty, strict)?;
    let warnings = if opts.field_validation == FieldValidation::Ignore {
        Vec::new()
    } else {
        dups
    };
    Ok((v, warnings))
}

/// Checks that a body is an object of the served kind in the URL's namespace (and name), and
/// fills `apiVersion`/`kind` when absent, as upstream's decoder defaults them from the URL.
pub fn check_body(
    served: &ResourceInfo,
    mut obj: Value,
    ns: &str,
    name: Option<&str>,
) -> Result<Value, ApiError> {
    let Value::Object(map) = &mut obj else {
        return Err(ApiError::bad_request(format!(
            "the body of the request must be a {} object",
            served.kind
        )));
    };
    let expected_av = served.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(expected_av));
        }
        Some(av) if av != expected_av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected_av})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(served.kind));
        }
        Some(k) if k != served.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                served.kind
            )));
        }
        _ => {}
    }
    let body_ns = object::namespace(&obj);
    if served.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(url_name) = name {
        let body_name = object::name(&obj);
        if !body_name.is_empty() && body_name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
        if body_name.is_empty() {
            object::meta_mut(&mut obj).insert("name".into(), json!(url_name));
        }
    }
    Ok(obj)
}

/// DeleteOptions from the query string, overlaid by a body if one was sent.
fn delete_options(w: &WriteRequest<'_>) -> Result<DeleteOptions, ApiError> {
    let q = w.query;
    let mut opts = DeleteOptions {
        user: w.user.to_string(),
        grace_period_seconds: q.int("gracePeriodSeconds")?,
        propagation_policy: q
            .get("propagationPolicy")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        precondition_uid: None,
        precondition_rv: None,
        dry_run: request::parse_dry_run(q)?,
    };
    let mut orphan = match q.get("orphanDependents") {
        None => None,
        Some(_) => Some(q.flag("orphanDependents")?),
    };
    if !w.body.is_empty() {
        let ty = BodyType::from_content_type(w.content_type)?;
        let (body, _) = codec::decode_object(&w.body, ty, false)?;
        opts.apply_body(&body, &mut orphan)?;
    }
    opts.finish(orphan)
}

/// What a watcher with `filter` sees of an event: upstream turns selector transitions into
/// ADDED (starts matching) and DELETED (stops matching); the DELETED of an object leaving the
/// selection carries its previous content (the last the watcher saw) at the event's revision.
fn visible(filter: &Filter, ev: &CacheEvent) -> Option<(EventType, Arc<CachedObject>)> {
    let now = filter.matches(&ev.object);
    let current = || ev.object.clone();
    match ev.kind {
        EventType::Added | EventType::Deleted => now.then(|| (ev.kind, current())),
        EventType::Modified => {
            let before = ev.prev.as_ref().filter(|p| filter.matches(p));
            match (before, now) {
                (Some(_), true) => Some((EventType::Modified, current())),
                (None, true) => Some((EventType::Added, current())),
                (Some(p), false) => Some((EventType::Deleted, Arc::new(p.restamped(ev.rv())))),
                (None, false) => None,
            }
        }
    }
}

/// Sends one event's frame (if the watcher sees the event at all). False when the watch must
/// end: the client went away, or the event could not be encoded (reported as an ERROR event).
async fn deliver(
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    frame: Option<Result<Bytes, ApiError>>,
) -> bool {
    match frame {
        None => true,
        Some(Ok(f)) => tx.send(f).await.is_ok(),
        Some(Err(e)) => {
            let _ = tx.send(render::error_frame(&e)).await;
            false
        }
    }
}

async fn watch_loop(
    mut sub: crate::watchcache::Subscription,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    view: View,
    filter: Filter,
    bookmarks: bool,
    initial_end: bool,
    timeout: Duration,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut last_rv = sub.rv;
    let mut last_bookmark = std::time::Instant::now();
    let send = |ev: &CacheEvent| visible(&filter, ev).map(|(kind, o)| view.watch_event(kind, &o));
    for item in std::mem::take(&mut sub.initial) {
        if let WatchItem::Event(ev) = item {
            last_rv = last_rv.max(ev.rv());
            if !deliver(&tx, send(&ev)).await {
                return;
            }
        }
    }
    if initial_end && tx.send(view.bookmark(sub.rv, true)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            item = sub.rx.recv() => match item {
                // The cache dropped us (relist, or we fell behind): end the stream so the client resumes.
                None => return,
                Some(WatchItem::Event(ev)) => {
                    last_rv = ev.rv();
                    if !deliver(&tx, send(&ev)).await {
                        return;
                    }
                }
                Some(WatchItem::Progress(rv)) => {
                    last_rv = last_rv.max(rv);
                    if bookmarks && last_bookmark.elapsed() >= BOOKMARK_INTERVAL {
                        last_bookmark = std::time::Instant::now();
                        if tx.send(view.bookmark(last_rv, false)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
