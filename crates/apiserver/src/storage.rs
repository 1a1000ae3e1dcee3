//! The generic store: get, list, watch, create, update, patch, delete and deletecollection,
//! written once for every resource over the [`KvStore`] and the resource's [`DynStrategy`].
//!
//! Like upstream's `registry/generic/registry/store.go`:
//! * every update is a *guaranteed update*: read, compute the new object from the current one,
//!   compare-and-swap on the mod revision, and retry from a fresh read on a conflict — unless
//!   the request itself named a `resourceVersion`, in which case a mismatch is the client's 409;
//! * storage errors become API `Status` errors in exactly one place ([`ResourceStore::store_error`]);
//! * side effects of a strategy (allocations) are rolled back whenever the write does not land;
//! * deletion honours finalizers, graceful periods and the propagation policy by turning the
//!   delete into an update that sets `deletionTimestamp`; the object goes away once nothing
//!   holds it.

use std::sync::Arc;
use std::time::Duration;

use api::ApiError;
use api::resources::ResourceInfo;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use registry::DynStrategy;
use serde_json::{Value, json};
use store::{KvStore, RangeRequest, StoreError};

use crate::filter::Filter;
use crate::object;
use crate::record::WriteRecord;
use crate::request::{FieldValidation, ListOptions, RvMatch, WriteOptions};
use crate::watchcache::{CacheEvent, CachedObject, Subscription, WatchCache, WatchItem};

/// Conflicts retried by one guaranteed update before giving up.
const MAX_CONFLICT_RETRIES: usize = 64;
/// How long a read waits for the watch cache to reach a requested revision.
const FRESHNESS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a consistent list waits for the watch cache to confirm it is current before
/// reading from the store instead.
const CONSISTENT_READ_WAIT: Duration = Duration::from_millis(250);
/// Names tried for one `generateName` create before reporting the collision.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// Which part of an object a write goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
    /// A namespace's `finalize`: only `spec.finalizers` may change.
    Finalize,
}

/// A store event as a watch item (objects decoded the way the cache decodes them).
fn watch_item_from_store(info: &'static ResourceInfo, ev: store::WatchEvent) -> Option<WatchItem> {
    let rv = ev.revision();
    if ev.kind == store::EventKind::Progress {
        return Some(WatchItem::Progress(rv));
    }
    let object = match CachedObject::from_store(info, &ev.kv.key, &ev.kv.value, rv) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            tracing::error!(resource = info.plural, error = %e, "skipping corrupt stored object");
            return None;
        }
    };
    // A put that did not create the key is a modification even when its previous value is
    // not available: the event of the compaction revision itself loses its previous row (as
    // upstream's etcd watcher, the kind follows the create revision, not the previous value).
    let modified = ev.kv.create_revision != ev.kv.mod_revision;
    let prev = ev
        .prev
        .and_then(|p| CachedObject::from_store(info, &p.key, &p.value, p.mod_revision).ok())
        .map(Arc::new);
    Some(WatchItem::Event(Arc::new(CacheEvent {
        kind: crate::watchcache::event_type(ev.kind, prev.is_some() || modified),
        object,
        prev,
        at: std::time::Instant::now(),
    })))
}

/// Upstream's answer to a read at a revision the server has not reached.
fn too_large_resource_version(requested: i64, current: i64) -> ApiError {
    let mut e = ApiError::timeout(format!(
        "Too large resource version: {requested}, current resource version: {current}"
    ));
    e.retry_after_seconds = Some(1);
    e
}

/// The result of a successful write.
#[derive(Debug)]
pub struct WriteResult {
    /// The object as stored (storage version), with its new `resourceVersion`.
    pub object: Value,
    pub created: bool,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// The result of a delete.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// Deletion is pending (finalizers or a grace period); this is the updated object.
    Pending(Value),
}

/// How a delete should treat dependents and wait.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// Who is deleting (recorded when the delete leaves the object pending).
    pub user: String,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Applies a `DeleteOptions` body on top of the options from the query string.
    pub fn apply_body(&mut self, body: &Value, orphan: &mut Option<bool>) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|v| !v.is_null()) {
            self.grace_period_seconds =
                Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(p.to_string());
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            *orphan = Some(o);
        }
        if let Some(pre) = body.get("preconditions") {
            self.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
            self.precondition_rv = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        for v in body
            .get("dryRun")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match v.as_str() {
                Some("All") => self.dry_run = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dryRun value {other:?}: supported values: \"All\""
                    )));
                }
            }
        }
        Ok(())
    }

    /// Turns `orphanDependents` into a propagation policy and validates the result.
    pub fn finish(mut self, orphan: Option<bool>) -> Result<DeleteOptions, ApiError> {
        let invalid = |e| ApiError::invalid("meta.k8s.io", "DeleteOptions", "", vec![e]);
        if let Some(o) = orphan {
            if let Some(p) = &self.propagation_policy {
                return Err(invalid(api::FieldError::invalid(
                    "propagationPolicy",
                    p.as_str(),
                    "orphanDependents and deletionPropagation cannot be both set",
                )));
            }
            self.propagation_policy = Some(if o { "Orphan" } else { "Background" }.to_string());
        }
        if let Some(p) = &self.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(invalid(api::FieldError::not_supported(
                "propagationPolicy",
                p.as_str(),
                &["Foreground", "Background", "Orphan"],
            )));
        }
        // Upstream treats a negative grace period as the shortest graceful one.
        if self.grace_period_seconds.is_some_and(|g| g < 0) {
            self.grace_period_seconds = Some(1);
        }
        Ok(self)
    }
}

/// A page of a list: the objects (storage version) and the list's metadata.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Arc<CachedObject>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
}

/// Continue tokens carry the snapshot revision and the next key, like upstream's.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

pub struct ResourceStore {
    pub info: &'static ResourceInfo,
    pub strategy: Arc<dyn DynStrategy>,
    pub cache: Arc<WatchCache>,
    kv: Arc<dyn KvStore>,
    /// The namespaces cache, for the NamespaceLifecycle admission rule (`None` for namespaces).
    namespaces: Option<Arc<WatchCache>>,
}

/// The stored form of an object: its JSON without `resourceVersion` (the store's revision is
/// the truth; the cache splices it back in), led by the record of this write.
fn encode(v: &Value, record: &WriteRecord) -> Result<Bytes, ApiError> {
    let json = if v.pointer("/metadata/resourceVersion").is_some() {
        let mut v = v.clone();
        object::clear_resource_version(&mut v);
        serde_json::to_vec(&v)
    } else {
        serde_json::to_vec(v)
    };
    json.map(|j| Bytes::from(crate::record::wrap(&j, record)))
        .map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

fn decode_stored(bytes: &[u8], rv: i64) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored object is not valid JSON: {e}")))?;
    crate::record::strip(&mut v);
    object::set_resource_version(&mut v, rv);
    Ok(v)
}

/// Random suffix for `generateName`, from upstream's alphabet (no vowels, no look-alikes).
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Upstream's longest `generateName` prefix kept: a 63-character name minus the suffix. A
/// longer prefix is cut, so controllers naming pods after long owners still get valid names.
const MAX_GENERATED_PREFIX: usize = 58;

/// The name for a `generateName` create.
fn generated_name(base: &str, suffix: &str) -> String {
    let mut end = base.len().min(MAX_GENERATED_PREFIX);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &base[..end])
}

impl ResourceStore {
    pub fn new(
        info: &'static ResourceInfo,
        strategy: Arc<dyn DynStrategy>,
        kv: Arc<dyn KvStore>,
        cache: Arc<WatchCache>,
        namespaces: Option<Arc<WatchCache>>,
    ) -> ResourceStore {
        ResourceStore {
            info,
            strategy,
            cache,
            kv,
            namespaces,
        }
    }

    fn key(&self, ns: &str, name: &str) -> String {
        self.info.storage_key(ns, name)
    }

    /// Maps a storage error on object `name` to the API error users see.
    pub fn store_error(&self, e: StoreError, name: &str) -> ApiError {
        let info = self.info;
        match e {
            StoreError::AlreadyExists { .. } => {
                ApiError::already_exists(info.group, info.plural, name)
            }
            StoreError::NotFound { .. } => ApiError::not_found(info.group, info.plural, name),
            StoreError::Conflict { .. } => {
                ApiError::modified_conflict(info.group, info.plural, name)
            }
            StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::too_old_resource_version(requested, compacted),
            StoreError::FutureRevision { requested, current } => {
                too_large_resource_version(requested, current)
            }
            StoreError::Unavailable(why) => {
                ApiError::service_unavailable(format!("storage is unavailable: {why}"))
            }
            StoreError::Timeout(why) => ApiError::timeout(format!(
                "storage did not answer in time: {why}; a write may still take effect, \
                     so read the object before retrying it"
            )),
            StoreError::Internal(why) => ApiError::internal(why),
        }
    }

    /// The store's current revision.
    async fn current_revision(&self) -> Result<i64, ApiError> {
        self.kv
            .current_revision()
            .await
            .map_err(|e| self.store_error(e, ""))
    }

    /// The latest state of one object, read from the store.
    /// The stored state of `key` and its decoded object (with `resourceVersion`), or 404.
    async fn current(&self, key: &str, name: &str) -> Result<(store::KeyValue, Value), ApiError> {
        match self
            .kv
            .get(key)
            .await
            .map_err(|e| self.store_error(e, name))?
        {
            Some(cur) => {
                let obj = decode_stored(&cur.value, cur.mod_revision)?;
                Ok((cur, obj))
            }
            None => Err(ApiError::not_found(self.info.group, self.info.plural, name)),
        }
    }

    /// The state an update starts from: the watch cache's copy when `try_cache` and the cache
    /// is live and holds the object, else the store's. Returns its revision, the object (with
    /// `resourceVersion`), and whether it came from the cache (and so may be stale).
    async fn current_for_update(
        &self,
        key: &str,
        name: &str,
        try_cache: bool,
    ) -> Result<(i64, Value, bool), ApiError> {
        if try_cache
            && self.cache.ready_rv().is_some()
            && let Some(cached) = self.cache.get(key)
        {
            return Ok((cached.rv, cached.value(), true));
        }
        let (cur, obj) = self.current(key, name).await?;
        Ok((cur.mod_revision, obj, false))
    }

    /// The latest state of one object, read from the store, in its cached (encoded) form.
    pub async fn get_encoded(&self, ns: &str, name: &str) -> Result<Arc<CachedObject>, ApiError> {
        let key = self.key(ns, name);
        match self
            .kv
            .get(&key)
            .await
            .map_err(|e| self.store_error(e, name))?
        {
            Some(kv) => CachedObject::from_store(self.info, &key, &kv.value, kv.mod_revision)
                .map(Arc::new)
                .map_err(ApiError::internal),
            None => Err(ApiError::not_found(self.info.group, self.info.plural, name)),
        }
    }

    pub async fn get(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        Ok(self.current(&self.key(ns, name), name).await?.1)
    }

    /// One object from the watch cache (`resourceVersion=0`: any recent state will do).
    pub fn get_cached(&self, ns: &str, name: &str) -> Result<Arc<CachedObject>, ApiError> {
        self.cache
            .get(&self.key(ns, name))
            .ok_or_else(|| ApiError::not_found(self.info.group, self.info.plural, name))
    }

    /// NamespaceLifecycle: objects may be created only in namespaces that exist and are not
    /// terminating. The cache may lag a namespace created a moment ago, so a miss is confirmed
    /// against the store.
    async fn check_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let Some(namespaces) = &self.namespaces else {
            return Ok(());
        };
        if !self.info.namespaced {
            return Ok(());
        }
        let key = format!("{}{ns}", namespaces.info().storage_prefix());
        let phase = match namespaces.get(&key) {
            Some(o) => o
                .value()
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_string),
            None => match self
                .kv
                .get(&key)
                .await
                .map_err(|e| self.store_error(e, ns))?
            {
                Some(kv) => serde_json::from_slice::<Value>(&kv.value)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/status/phase")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    }),
                None => return Err(ApiError::not_found("", "namespaces", ns)),
            },
        };
        if phase.as_deref() == Some("Terminating") {
            let mut e = ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ));
            e.group = self.info.group.to_string();
            e.kind = self.info.plural.to_string();
            e.causes = vec![api::status::Cause {
                reason: "NamespaceTerminating".into(),
                message: format!("namespace {ns} is being terminated"),
                field: "metadata.namespace".into(),
            }];
            return Err(e);
        }
        Ok(())
    }

    /// Applies `fieldValidation` to the unknown fields a decode found.
    fn unknown_field_warnings(
        &self,
        unknown: Vec<String>,
        validation: FieldValidation,
    ) -> Result<Vec<String>, ApiError> {
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let msgs: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match validation {
            FieldValidation::Ignore => Ok(Vec::new()),
            FieldValidation::Warn => Ok(msgs),
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                msgs.join(", ")
            ))),
        }
    }

    /// Creates an object. `obj` is in the storage version; `ns` is the namespace of the URL.
    pub async fn create(
        &self,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        self.check_namespace(ns).await?;
        {
            let meta = object::meta_mut(&mut obj);
            if self.info.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            if meta
                .get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| !rv.is_empty())
            {
                return Err(ApiError::bad_request(
                    "resourceVersion should not be set on objects to be created",
                ));
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(f);
            }
        }
        let generate = object::name(&obj).is_empty()
            && obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .is_some_and(|g| !g.is_empty());
        let attempts = if generate { GENERATE_NAME_ATTEMPTS } else { 1 };
        for attempt in 1..=attempts {
            let mut candidate = obj.clone();
            if generate {
                let base = candidate
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                object::meta_mut(&mut candidate).insert(
                    "name".into(),
                    json!(generated_name(&base, &random_suffix())),
                );
            }
            let admitted = self.strategy.admit_create(candidate, opts.dry_run)?;
            let warnings =
                self.unknown_field_warnings(admitted.unknown_fields, opts.field_validation)?;
            let new = admitted.object;
            let name = object::name(&new).to_string();
            if opts.dry_run {
                return Ok(WriteResult {
                    object: new,
                    created: true,
                    warnings,
                });
            }
            let bytes = match encode(&new, &WriteRecord::new(&opts.user, "create")) {
                Ok(b) => b,
                Err(e) => {
                    self.strategy.rollback_write(&new, None);
                    return Err(e);
                }
            };
            match self.kv.create(&self.key(ns, &name), bytes).await {
                Ok(rev) => {
                    self.strategy.after_write(&new, None);
                    let mut out = new;
                    object::set_resource_version(&mut out, rev);
                    return Ok(WriteResult {
                        object: out,
                        created: true,
                        warnings,
                    });
                }
                Err(e) => {
                    self.strategy.rollback_write(&new, None);
                    if matches!(e, StoreError::AlreadyExists { .. }) && attempt < attempts {
                        continue;
                    }
                    return Err(self.store_error(e, &name));
                }
            }
        }
        Err(ApiError::internal("generateName produced no usable name"))
    }

    /// The guaranteed-update loop behind update, patch and the status/finalize subresources.
    ///
    /// `compute` receives the current object (storage version, with `resourceVersion`) and
    /// returns the desired one. If the desired object carries a `resourceVersion`, it must
    /// match the current one (the client's optimistic lock); otherwise conflicts are retried
    /// with a fresh read.
    pub async fn update_with<F>(
        &self,
        ns: &str,
        name: &str,
        sub: Subresource,
        opts: &WriteOptions,
        require_rv: bool,
        mut compute: F,
    ) -> Result<WriteResult, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let key = self.key(ns, name);
        // The first attempt starts from the watch cache's copy (no store read); one that
        // proves stale — a resourceVersion mismatch, a no-op against it, a conflicting write —
        // is tried again from the store, like upstream's `cachedExistingObject`.
        let mut try_cache = !opts.dry_run;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (cur_rev, old, from_cache) = self.current_for_update(&key, name, try_cache).await?;
            try_cache = false;
            let mut desired = compute(&old)?;
            let wanted_rv = object::resource_version(&desired).to_string();
            let conditional = !wanted_rv.is_empty();
            if conditional && wanted_rv != cur_rev.to_string() {
                if from_cache {
                    continue;
                }
                return Err(ApiError::modified_conflict(
                    self.info.group,
                    self.info.plural,
                    name,
                ));
            }
            if !conditional && require_rv && !self.strategy.allow_unconditional_update() {
                return Err(ApiError::invalid(
                    self.info.group,
                    self.info.kind,
                    name,
                    vec![api::FieldError::invalid(
                        "metadata.resourceVersion",
                        "",
                        "must be specified for an update",
                    )],
                ));
            }
            object::clear_resource_version(&mut desired);
            let admitted = match sub {
                Subresource::Main => self.strategy.admit_update(desired, &old, opts.dry_run)?,
                Subresource::Status => self.strategy.admit_status_update(desired, &old)?,
                Subresource::Finalize => self.strategy.admit_finalize(&desired, &old)?,
            };
            let warnings =
                self.unknown_field_warnings(admitted.unknown_fields, opts.field_validation)?;
            let new = admitted.object;
            // A dry run reserved nothing (strategies only check availability then).
            let rollback = || {
                if !opts.dry_run {
                    self.strategy.rollback_write(&new, Some(&old));
                }
            };

            // An object whose deletion was requested goes away as soon as nothing holds it:
            // its last finalizer was just removed, or its grace period is over (zero). An
            // update during a graceful period (e.g. a kubelet reporting terminated containers)
            // keeps it (upstream's `shouldDeleteDuringUpdate`).
            let held_before =
                !object::finalizers(&old).is_empty() || self.strategy.has_pending_finalizers(&old);
            let grace = new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if object::deletion_timestamp(&new).is_some()
                && object::finalizers(&new).is_empty()
                && !self.strategy.has_pending_finalizers(&new)
                && (held_before || grace.is_none_or(|g| g == 0))
            {
                rollback();
                if opts.dry_run {
                    return Ok(WriteResult {
                        object: new,
                        created: false,
                        warnings,
                    });
                }
                match self.kv.delete(&key, Some(cur_rev)).await {
                    Ok((rev, _)) => {
                        self.strategy.after_delete(&old);
                        let mut out = new;
                        object::set_resource_version(&mut out, rev);
                        return Ok(WriteResult {
                            object: out,
                            created: false,
                            warnings,
                        });
                    }
                    Err(StoreError::Conflict { .. }) if !conditional || from_cache => continue,
                    Err(e) => return Err(self.store_error(e, name)),
                }
            }

            // Nothing changed: upstream skips the write and keeps the resourceVersion.
            if object::without_rv(&new) == object::without_rv(&old) {
                rollback();
                if from_cache {
                    continue;
                }
                return Ok(WriteResult {
                    object: old,
                    created: false,
                    warnings,
                });
            }
            if opts.dry_run {
                let mut out = new;
                object::set_resource_version(&mut out, cur_rev);
                return Ok(WriteResult {
                    object: out,
                    created: false,
                    warnings,
                });
            }
            let op = match sub {
                Subresource::Main => "update",
                Subresource::Status => "update/status",
                Subresource::Finalize => "update/finalize",
            };
            let bytes = match encode(&new, &WriteRecord::new(&opts.user, op)) {
                Ok(b) => b,
                Err(e) => {
                    rollback();
                    return Err(e);
                }
            };
            match self.kv.update(&key, bytes, cur_rev).await {
                Ok(rev) => {
                    self.strategy.after_write(&new, Some(&old));
                    let mut out = new;
                    object::set_resource_version(&mut out, rev);
                    return Ok(WriteResult {
                        object: out,
                        created: false,
                        warnings,
                    });
                }
                Err(StoreError::Conflict { .. }) if !conditional || from_cache => {
                    rollback();
                    continue;
                }
                Err(e) => {
                    rollback();
                    return Err(self.store_error(e, name));
                }
            }
        }
        Err(ApiError::conflict(
            self.info.group,
            self.info.plural,
            name,
            "too many concurrent writers; please retry",
        ))
    }

    /// A guaranteed update made by the server itself (a binding, budget accounting): `change`
    /// edits the current object in place. No strategy runs — these writes change fields users
    /// may not (a pod's node) under rules of their own, which `change` enforces. Returns the
    /// object as stored (unchanged objects are not written).
    pub async fn mutate<F>(
        &self,
        ns: &str,
        name: &str,
        record: &WriteRecord,
        dry_run: bool,
        mut change: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&mut Value) -> Result<(), ApiError>,
    {
        let key = self.key(ns, name);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (cur, old) = self.current(&key, name).await?;
            let mut new = old.clone();
            change(&mut new)?;
            object::set_resource_version(&mut new, cur.mod_revision);
            if new == old || dry_run {
                return Ok(new);
            }
            match self
                .kv
                .update(&key, encode(&new, record)?, cur.mod_revision)
                .await
            {
                Ok(rev) => {
                    object::set_resource_version(&mut new, rev);
                    return Ok(new);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(self.store_error(e, name)),
            }
        }
        Err(ApiError::conflict(
            self.info.group,
            self.info.plural,
            name,
            "too many concurrent writers; please retry",
        ))
    }

    /// PUT: replaces the object with `obj`, or creates it where the resource allows that.
    pub async fn update(
        &self,
        ns: &str,
        name: &str,
        mut obj: Value,
        sub: Subresource,
        opts: &WriteOptions,
    ) -> Result<WriteResult, ApiError> {
        if self.info.namespaced {
            object::meta_mut(&mut obj).insert("namespace".into(), json!(ns));
        }
        if sub == Subresource::Main && self.strategy.allow_create_on_update() {
            let exists = self
                .kv
                .get(&self.key(ns, name))
                .await
                .map_err(|e| self.store_error(e, name))?
                .is_some();
            if !exists {
                let mut create = obj.clone();
                object::clear_resource_version(&mut create);
                match self.create(ns, create, opts).await {
                    // Lost a race with another creator: update what they made.
                    Err(e) if e.reason == api::Reason::AlreadyExists => {}
                    other => return other,
                }
            }
        }
        self.update_with(ns, name, sub, opts, true, |_| Ok(obj.clone()))
            .await
    }

    /// DELETE of one object.
    pub async fn delete(
        &self,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let key = self.key(ns, name);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (cur, old) = self.current(&key, name).await?;
            if let Some(uid) = &opts.precondition_uid
                && uid != object::uid(&old)
            {
                return Err(ApiError::conflict(
                    self.info.group,
                    self.info.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        object::uid(&old)
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != cur.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    self.info.group,
                    self.info.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        cur.mod_revision
                    ),
                ));
            }

            let mut finalizers = object::finalizers(&old);
            match opts.propagation_policy.as_deref() {
                Some("Orphan") => {
                    finalizers.retain(|f| f != "foregroundDeletion");
                    if !finalizers.iter().any(|f| f == "orphan") {
                        finalizers.push("orphan".into());
                    }
                }
                Some("Foreground") => {
                    finalizers.retain(|f| f != "orphan");
                    if !finalizers.iter().any(|f| f == "foregroundDeletion") {
                        finalizers.push("foregroundDeletion".into());
                    }
                }
                Some("Background") => {
                    finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion")
                }
                _ => {}
            }
            let grace = self
                .strategy
                .graceful_delete(&old, opts.grace_period_seconds)
                .filter(|g| *g > 0);
            let pending = !finalizers.is_empty()
                || grace.is_some()
                || self.strategy.has_pending_finalizers(&old);

            if !pending {
                if opts.dry_run {
                    return Ok(Deleted::Gone(old));
                }
                match self.kv.delete(&key, Some(cur.mod_revision)).await {
                    Ok((rev, _)) => {
                        self.strategy.after_delete(&old);
                        let mut out = old;
                        object::set_resource_version(&mut out, rev);
                        return Ok(Deleted::Gone(out));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(self.store_error(e, name)),
                }
            }

            let mut new = old.clone();
            object::set_finalizers(&mut new, &finalizers);
            {
                let meta = object::meta_mut(&mut new);
                let period = grace.unwrap_or(0);
                let current = meta
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                // A second delete may only shorten an ongoing graceful period.
                if meta.get("deletionTimestamp").is_none() || current.is_some_and(|c| period < c) {
                    meta.insert(
                        "deletionTimestamp".into(),
                        json!(object::rfc3339_after(period)),
                    );
                    meta.insert("deletionGracePeriodSeconds".into(), json!(period));
                }
            }
            let mut new = if object::deletion_timestamp(&old).is_none() {
                self.strategy.prepare_for_delete(&new)?
            } else {
                new
            };
            object::set_resource_version(&mut new, cur.mod_revision);
            if object::without_rv(&new) == object::without_rv(&old) {
                return Ok(Deleted::Pending(old));
            }
            if opts.dry_run {
                return Ok(Deleted::Pending(new));
            }
            let record = WriteRecord::new(&opts.user, "delete");
            match self
                .kv
                .update(&key, encode(&new, &record)?, cur.mod_revision)
                .await
            {
                Ok(rev) => {
                    object::set_resource_version(&mut new, rev);
                    return Ok(Deleted::Pending(new));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(self.store_error(e, name)),
            }
        }
        Err(ApiError::conflict(
            self.info.group,
            self.info.plural,
            name,
            "too many concurrent writers; please retry",
        ))
    }

    /// Lists objects per the list options; `filter` holds the parsed selectors.
    pub async fn list(
        &self,
        ns: Option<&str>,
        opts: &ListOptions,
        filter: &Filter,
    ) -> Result<ListPage, ApiError> {
        if !opts.continue_token.is_empty() {
            let token = self.decode_continue(&opts.continue_token)?;
            return self
                .list_from_store(ns, token.rv, Some(token.start), opts.limit, filter)
                .await;
        }
        let rv = opts.revision()?;
        let exact = opts.resource_version_match == Some(RvMatch::Exact);
        match (rv, exact) {
            (Some(rev), true) => {
                return self
                    .list_from_store(ns, rev, None, opts.limit, filter)
                    .await;
            }
            (None, true) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch=Exact requires a non-zero resourceVersion",
                ));
            }
            _ => {}
        }
        let snapshot = match (opts.resource_version.as_str(), rv) {
            // The cache is (re)syncing with the store: read the store's current state.
            _ if self.cache.ready_rv().is_none() => {
                let current = self.current_revision().await?;
                if let Some(rev) = rv.filter(|&rev| rev > current) {
                    return Err(too_large_resource_version(rev, current));
                }
                Some(current)
            }
            // Any state is fine: serve whatever the cache has.
            ("0", _) => None,
            (_, Some(rev)) => {
                self.cache.wait_for(rev, FRESHNESS_TIMEOUT).await?;
                None
            }
            // Consistent read: the cache must have seen everything committed so far.
            _ => {
                let current = self.current_revision().await?;
                if self.cache_is_fresh(current).await {
                    None
                } else {
                    Some(current)
                }
            }
        };
        if let Some(current) = snapshot {
            return self
                .list_from_store(ns, current, None, opts.limit, filter)
                .await;
        }
        let (mut items, cache_rv) = self.cache.list(ns, |o| filter.matches(o));
        let mut continue_token = None;
        // `resourceVersion=0` lists ignore `limit`, as upstream's cache does.
        if opts.limit > 0 && opts.resource_version != "0" && items.len() > opts.limit as usize {
            items.truncate(opts.limit as usize);
            if let Some(last) = items.last() {
                continue_token = Some(self.encode_continue(cache_rv, &last.key));
            }
        }
        Ok(ListPage {
            items,
            resource_version: cache_rv,
            continue_token,
        })
    }

    /// Whether the cache has seen every write up to `current`. A cache whose resource had no
    /// recent writes lags the global revision; a progress request lets its store watch confirm
    /// that nothing is missing (upstream's consistent reads from cache). If the answer does
    /// not come quickly the caller reads from the store instead.
    async fn cache_is_fresh(&self, current: i64) -> bool {
        if self.cache.ready_rv().is_some_and(|seen| seen >= current) {
            return true;
        }
        if self.kv.request_progress().await.is_err() {
            return false;
        }
        self.cache
            .wait_for(current, CONSISTENT_READ_WAIT)
            .await
            .is_ok()
    }

    /// Reads a (page of a) list from the store at revision `rev`.
    async fn list_from_store(
        &self,
        ns: Option<&str>,
        rev: i64,
        start: Option<String>,
        limit: i64,
        filter: &Filter,
    ) -> Result<ListPage, ApiError> {
        let prefix = match ns {
            Some(ns) if self.info.namespaced => format!("{}{ns}/", self.info.storage_prefix()),
            _ => self.info.storage_prefix(),
        };
        let continuing = start.is_some();
        let mut start = start.map(|s| format!("{}{s}", self.info.storage_prefix()));
        let want = if limit > 0 {
            limit as usize
        } else {
            usize::MAX
        };
        let mut items = Vec::new();
        loop {
            let page = (want.saturating_sub(items.len())).clamp(1, 1000);
            let resp = self
                .kv
                .range(RangeRequest { prefix: prefix.clone(), start: start.take(), revision: Some(rev), limit: Some(page) })
                .await
                .map_err(|e| match e {
                    // A paging snapshot that is gone: say so in the terms of `continue`.
                    StoreError::Compacted { .. } if continuing => ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ),
                    e => self.store_error(e, ""),
                })?;
            let last_key = resp.kvs.last().map(|kv| kv.key.clone());
            for kv in &resp.kvs {
                let o = CachedObject::from_store(self.info, &kv.key, &kv.value, kv.mod_revision)
                    .map_err(ApiError::internal)?;
                if filter.matches(&o) {
                    items.push(Arc::new(o));
                }
            }
            if items.len() >= want {
                let more = resp.more || items.len() > want;
                items.truncate(want);
                let continue_token = if more {
                    items.last().map(|o| self.encode_continue(rev, &o.key))
                } else {
                    None
                };
                return Ok(ListPage {
                    items,
                    resource_version: rev,
                    continue_token,
                });
            }
            match (resp.more, last_key) {
                (true, Some(k)) => start = Some(format!("{k}\0")),
                _ => {
                    return Ok(ListPage {
                        items,
                        resource_version: rev,
                        continue_token: None,
                    });
                }
            }
        }
    }

    fn encode_continue(&self, rv: i64, last_key: &str) -> String {
        let rel = last_key
            .strip_prefix(&self.info.storage_prefix())
            .unwrap_or(last_key);
        let token = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv,
            start: format!("{rel}\0"),
        };
        base64::engine::general_purpose::URL_SAFE
            .encode(serde_json::to_vec(&token).unwrap_or_default())
    }

    fn decode_continue(&self, token: &str) -> Result<ContinueToken, ApiError> {
        let invalid =
            |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(token)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
            .map_err(|_| invalid("not base64"))?;
        let t: ContinueToken =
            serde_json::from_slice(&raw).map_err(|_| invalid("not a continue token"))?;
        if t.v != "meta.k8s.io/v1" {
            return Err(invalid(
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ));
        }
        if t.rv <= 0 || t.start.contains("..") || t.start.starts_with('/') {
            return Err(invalid("invalid start key"));
        }
        Ok(t)
    }

    /// Starts a watch per the list options (see [`WatchCache::subscribe`]).
    pub async fn watch(
        &self,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Subscription, ApiError> {
        let ready = self.cache.ready_rv();
        let from = match (opts.resource_version.as_str(), opts.revision()?) {
            (_, Some(rev)) => {
                if ready.is_some() {
                    self.cache.wait_for(rev, FRESHNESS_TIMEOUT).await?;
                }
                Some(rev)
            }
            // Start at the current state without replaying it.
            _ if opts.send_initial_events == Some(false) => match ready {
                Some(rv) => Some(rv),
                None => Some(self.current_revision().await?),
            },
            _ => None,
        };
        match (self.cache.subscribe(from, ns), from) {
            // Older than the cache's window (e.g. the server restarted since the client last
            // saw an event), or the cache is relisting after losing its store watch: the store
            // may still hold that history, so resume from it rather than sending the client off
            // to relist.
            (Err(e), Some(rv)) if e.code == 410 || e.code == 503 => {
                self.watch_from_store(ns, rv).await
            }
            (result, _) => result,
        }
    }

    /// A watch fed by its own store watch from `rv` (still 410 if the store compacted it).
    async fn watch_from_store(&self, ns: Option<&str>, rv: i64) -> Result<Subscription, ApiError> {
        let prefix = match ns {
            Some(ns) if self.info.namespaced => format!("{}{ns}/", self.info.storage_prefix()),
            _ => self.info.storage_prefix(),
        };
        let mut stream = self
            .kv
            .watch(&prefix, rv)
            .await
            .map_err(|e| self.store_error(e, ""))?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::watchcache::WATCHER_QUEUE);
        let info = self.info;
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = tx.closed() => return,
                    ev = stream.next() => ev,
                };
                // A broken store watch ends the stream; the client resumes from its last event.
                let Some(Ok(ev)) = ev else { return };
                let Some(item) = watch_item_from_store(info, ev) else {
                    continue;
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(Subscription {
            initial: Vec::new(),
            rx,
            rv,
        })
    }

    /// Calls `observe_existing` for every cached object (allocator rebuild at startup).
    pub fn observe_existing(&self) {
        if !self.strategy.observes_existing() {
            return;
        }
        let (items, _) = self.cache.list(None, |_| true);
        for o in items {
            self.strategy.observe_existing(&o.value());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use store::{KeyValue, RangeResponse, Revision, WatchStream};

    use super::*;

    #[test]
    fn generated_names_cut_long_prefixes_as_upstream() {
        assert_eq!(generated_name("web-", "x2b4z"), "web-x2b4z");
        let long = format!("{}-", "a".repeat(300));
        let name = generated_name(&long, "x2b4z");
        assert_eq!(name.len(), 63);
        assert_eq!(name, format!("{}x2b4z", "a".repeat(58)));
    }

    /// A store that counts range reads, to tell cache-served lists from store-served ones, and
    /// can hold back its watch events (`held`), to make a watch cache fall behind.
    struct Counting {
        inner: Arc<dyn KvStore>,
        ranges: AtomicUsize,
        held: tokio::sync::watch::Sender<bool>,
    }

    impl Counting {
        fn new(inner: Arc<dyn KvStore>) -> Arc<Counting> {
            Arc::new(Counting {
                inner,
                ranges: AtomicUsize::new(0),
                held: tokio::sync::watch::Sender::new(false),
            })
        }
    }

    #[async_trait]
    impl KvStore for Counting {
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
            self.inner.get(key).await
        }
        async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
            self.ranges.fetch_add(1, Ordering::SeqCst);
            self.inner.range(req).await
        }
        async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
            self.inner.create(key, value).await
        }
        async fn update(
            &self,
            key: &str,
            value: Bytes,
            expected: Revision,
        ) -> Result<Revision, StoreError> {
            self.inner.update(key, value, expected).await
        }
        async fn delete(
            &self,
            key: &str,
            expected: Option<Revision>,
        ) -> Result<(Revision, KeyValue), StoreError> {
            self.inner.delete(key, expected).await
        }
        async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
            use futures::StreamExt;
            let held = self.held.subscribe();
            let events = self.inner.watch(prefix, after).await?;
            Ok(Box::pin(events.then(move |ev| {
                let mut held = held.clone();
                async move {
                    let _ = held.wait_for(|h| !h).await;
                    ev
                }
            })))
        }
        async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
            self.inner.compact(revision).await
        }
        async fn current_revision(&self) -> Result<Revision, StoreError> {
            self.inner.current_revision().await
        }
        async fn compacted_revision(&self) -> Result<Revision, StoreError> {
            self.inner.compacted_revision().await
        }
        async fn request_progress(&self) -> Result<(), StoreError> {
            self.inner.request_progress().await
        }
    }

    /// ConfigMaps over an embedded store (behind [`Counting`]) with a synced watch cache.
    struct Fixture {
        _dir: tempfile::TempDir,
        kv: Arc<Counting>,
        info: &'static ResourceInfo,
        cache: Arc<WatchCache>,
        cms: ResourceStore,
        opts: WriteOptions,
    }

    async fn configmaps() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let inner = store::embedded::EmbeddedStore::open(
            dir.path(),
            store::embedded::EmbeddedOptions::default(),
        )
        .await
        .unwrap();
        let kv = Counting::new(inner);
        let info = api::resources::lookup("", "v1", "configmaps").unwrap();
        let cache = WatchCache::new(info);
        tokio::spawn(cache.clone().run(kv.clone()));
        let cms = ResourceStore::new(info, registry::plain(info), kv.clone(), cache.clone(), None);
        cache.wait_for(0, Duration::from_secs(5)).await.unwrap();
        let opts = WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Strict,
            field_manager: String::new(),
            user: "test".into(),
        };
        Fixture {
            _dir: dir,
            kv,
            info,
            cache,
            cms,
            opts,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consistent_lists_of_a_quiet_resource_come_from_the_cache() {
        let Fixture {
            _dir: _keep,
            kv,
            info,
            cms,
            opts,
            ..
        } = configmaps().await;
        cms.create("default", json!({"metadata": {"name": "a"}}), &opts)
            .await
            .unwrap();
        // Writes elsewhere move the global revision past what this cache has seen.
        for i in 0..5 {
            kv.create(
                &format!("/registry/core/secrets/default/s{i}"),
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        }
        let before = kv.ranges.load(Ordering::SeqCst);
        let filter = Filter::new(info, info, Some("default"), "", "").unwrap();
        let page = cms
            .list(Some("default"), &ListOptions::default(), &filter)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.resource_version, kv.current_revision().await.unwrap());
        assert_eq!(
            kv.ranges.load(Ordering::SeqCst),
            before,
            "served from the watch cache"
        );
    }

    /// Updates start from the watch cache's copy; when that copy is stale they must still end
    /// exactly as if they had read the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn updates_from_a_stale_cache_copy_end_as_from_the_store() {
        let Fixture {
            _dir: _keep,
            kv,
            cache,
            cms,
            opts,
            ..
        } = configmaps().await;
        let created = cms
            .create(
                "default",
                json!({"metadata": {"name": "a"}, "data": {"x": "1"}}),
                &opts,
            )
            .await
            .unwrap();
        let rv1 = object::resource_version(&created.object)
            .parse::<i64>()
            .unwrap();
        cache.wait_for(rv1, Duration::from_secs(5)).await.unwrap();

        // The cache stops hearing from the store; the store moves on to x=2.
        kv.held.send_replace(true);
        let set = |x: &'static str| {
            move |cur: &Value| {
                let mut v = cur.clone();
                v["data"]["x"] = json!(x);
                object::clear_resource_version(&mut v);
                Ok(v)
            }
        };
        let behind = cms
            .update_with("default", "a", Subresource::Main, &opts, false, set("2"))
            .await
            .unwrap();
        let rv2 = object::resource_version(&behind.object)
            .parse::<i64>()
            .unwrap();
        assert!(rv2 > rv1);
        assert_eq!(
            cache.get("/registry/core/configmaps/default/a").unwrap().rv,
            rv1
        );

        // Back to x=1: a no-op against the stale copy, a change against the store.
        let back = cms
            .update_with("default", "a", Subresource::Main, &opts, false, set("1"))
            .await
            .unwrap();
        let rv3 = object::resource_version(&back.object)
            .parse::<i64>()
            .unwrap();
        assert!(rv3 > rv2, "the change to x=1 was skipped as a no-op");
        assert_eq!(cms.get("default", "a").await.unwrap()["data"]["x"], "1");

        // A client holding the store's current resourceVersion is not refused because the
        // cache holds an older one.
        let conditional = cms
            .update_with("default", "a", Subresource::Main, &opts, true, |cur| {
                let mut v = cur.clone();
                v["data"]["x"] = json!("3");
                object::set_resource_version(&mut v, rv3);
                Ok(v)
            })
            .await
            .unwrap();
        assert_eq!(conditional.object["data"]["x"], "3");
        // And one holding a stale resourceVersion still gets the conflict.
        let stale = cms
            .update_with("default", "a", Subresource::Main, &opts, true, |cur| {
                let mut v = cur.clone();
                v["data"]["x"] = json!("4");
                object::set_resource_version(&mut v, rv2);
                Ok(v)
            })
            .await;
        assert!(stale.is_err(), "{stale:?}");
        assert_eq!(cms.get("default", "a").await.unwrap()["data"]["x"], "3");
        kv.held.send_replace(false);
    }

    /// The store cannot give the previous value of the event at the compaction revision itself
    /// (its previous row is what compaction removed); such a put is still a modification.
    #[test]
    fn store_events_are_added_only_when_they_create_the_key() {
        let info = api::resources::lookup("", "v1", "configmaps").unwrap();
        let put = |create: i64, rev: i64| store::WatchEvent {
            kind: store::EventKind::Put,
            kv: KeyValue {
                key: "/registry/core/configmaps/default/a".into(),
                value: Bytes::from_static(br#"{"metadata":{"name":"a","namespace":"default"}}"#),
                create_revision: create,
                mod_revision: rev,
            },
            prev: None,
        };
        let kind = |ev| match watch_item_from_store(info, ev) {
            Some(WatchItem::Event(e)) => e.kind,
            _ => panic!("not an event"),
        };
        assert_eq!(kind(put(9, 9)), crate::watchcache::EventType::Added);
        assert_eq!(kind(put(5, 9)), crate::watchcache::EventType::Modified);
    }
}
