//! What differs between resources, and the adapter the generic store calls.
//!
//! Upstream's generic registry writes create/update/delete once and asks a per-resource
//! *strategy* for everything else. [`Strategy`] is that contract, written against the typed
//! `k8s-openapi` object; [`DynStrategy`] is its object-safe, JSON-level face that the API
//! server's generic store holds for every resource. [`Adapter`] turns the first into the second,
//! so a resource's behaviour is one small `impl Strategy` and one line in [`crate::strategy_for`].
//!
//! Order of operations, as upstream (`rest.BeforeCreate` / `rest.BeforeUpdate`):
//! create: decode → [`Strategy::set_defaults`] → [`Strategy::prepare_for_create`] → validate (object
//! meta + [`Strategy::validate`]) → [`Strategy::before_write`] → store.
//! update: decode → set_defaults → status kept from the old object → prepare_for_update → generation
//! bump if the spec changed → validate_update → before_write → store.

use std::marker::PhantomData;

use api::resources::ResourceInfo;
use api::{ApiError, ApiType, FieldError};
use serde_json::Value;

use crate::meta;

/// How `metadata.name` must look for a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameValidation {
    /// RFC 1123 subdomain, at most 253 characters: most resources.
    Subdomain,
    /// RFC 1123 label, at most 63 characters: namespaces.
    Label,
    /// RFC 1035 label (starts with a letter): services.
    Dns1035Label,
    /// Anything usable as a URL path segment: RBAC objects.
    PathSegment,
}

/// Per-resource behaviour. Every method has the do-nothing default, so a resource states only
/// what differs.
pub trait Strategy: Send + Sync + 'static {
    type Object: ApiType;

    fn name_validation(&self) -> NameValidation {
        NameValidation::Subdomain
    }

    /// Whether `metadata.generation` starts at 1 and is bumped when anything outside
    /// `metadata` and `status` changes.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether a change outside the spec also starts a new generation (a Deployment's
    /// annotations do: they are copied to its ReplicaSets). Only asked when
    /// `tracks_generation()`.
    fn generation_changed(&self, _new: &Self::Object, _old: &Self::Object) -> bool {
        false
    }

    /// Whether a PUT to a missing name creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Whether a PUT without `metadata.resourceVersion` overwrites unconditionally.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    /// Upstream's defaulting (`SetDefaults_*`). Runs on every object decoded from a request:
    /// create, update, and the result of a patch.
    fn set_defaults(&self, _obj: &mut Self::Object) {}

    /// Create-time normalisation (clear status, initial phase...). Runs after `set_defaults`.
    fn prepare_for_create(&self, _obj: &mut Self::Object) {}

    /// Update-time normalisation of the main resource; `status` has already been copied from
    /// `old` for resources with a status subresource.
    fn prepare_for_update(&self, _new: &mut Self::Object, _old: &Self::Object) {}

    /// Type-specific validation on create (object metadata is validated generically).
    fn validate(&self, _obj: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// Type-specific validation on update, including immutable fields.
    fn validate_update(&self, new: &Self::Object, _old: &Self::Object) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Normalisation of a write through the `status` subresource; everything but `status` has
    /// already been copied from `old`.
    fn prepare_for_status_update(&self, _new: &mut Self::Object, _old: &Self::Object) {}

    /// Whether a status write may also change `metadata.annotations`. Upstream's status
    /// strategies keep the request's metadata; the Deployment controller relies on it to
    /// record `deployment.kubernetes.io/revision` without starting a new generation.
    fn status_update_sets_annotations(&self) -> bool {
        false
    }

    /// Validation of a write through the `status` subresource.
    fn validate_status_update(&self, _new: &Self::Object, _old: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// Reserves what the object needs from shared pools (Service cluster IPs, node ports) and
    /// fills the fields that depend on it. Runs after validation, right before the write; with
    /// `dry_run` it must only check availability. If the write then fails, `rollback_write` is
    /// called with the same objects.
    fn before_write(
        &self,
        _new: &mut Self::Object,
        _old: Option<&Self::Object>,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Undoes `before_write` after a failed (or abandoned) write.
    fn rollback_write(&self, _new: &Self::Object, _old: Option<&Self::Object>) {}

    /// After a successful update: release what `old` held and `new` no longer uses.
    fn after_write(&self, _new: &Self::Object, _old: Option<&Self::Object>) {}

    /// After the object has been removed from the store.
    fn after_delete(&self, _obj: &Self::Object) {}

    /// Whether `observe_existing` does anything. Start-up skips decoding every stored object
    /// for the many resources that have no pools to rebuild.
    const OBSERVES_EXISTING: bool = false;

    /// Called once per existing object when the server starts, so pools can be rebuilt.
    /// Only called when `OBSERVES_EXISTING` is true.
    fn observe_existing(&self, _obj: &Self::Object) {}

    /// For graceful deletion (pods): the grace period to wait given the one requested, or
    /// `None` to delete at once.
    fn graceful_delete(&self, _obj: &Self::Object, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Runs when a delete is requested on an object that will stay (finalizers or a graceful
    /// period), e.g. a namespace moving to `Terminating`.
    fn prepare_for_delete(&self, _obj: &mut Self::Object) {}

    /// Finalizers kept outside `metadata.finalizers` (a namespace's `spec.finalizers`) that
    /// still block removal of an object whose deletion was requested.
    fn has_pending_finalizers(&self, _obj: &Self::Object) -> bool {
        false
    }
}

/// The result of admitting an object for a write.
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    /// The object to store, in canonical form (typed round trip: unknown fields dropped).
    pub object: Value,
    /// Paths of fields the request carried that the type does not have (`spec.foo`).
    pub unknown_fields: Vec<String>,
}

/// What the generic store needs from a resource, at the JSON level.
pub trait DynStrategy: Send + Sync {
    fn info(&self) -> &'static ResourceInfo;
    fn tracks_generation(&self) -> bool;
    fn allow_create_on_update(&self) -> bool;
    fn allow_unconditional_update(&self) -> bool;
    /// Decodes, defaults, prepares and validates a new object. The caller has already filled
    /// server-set metadata (name from generateName, uid, creationTimestamp).
    fn admit_create(&self, input: Value, dry_run: bool) -> Result<Admitted, ApiError>;
    /// The same for a replacement of `old` through the main resource.
    fn admit_update(&self, input: Value, old: &Value, dry_run: bool) -> Result<Admitted, ApiError>;
    /// The same for a write through the `status` subresource.
    fn admit_status_update(&self, input: Value, old: &Value) -> Result<Admitted, ApiError>;
    /// The same for a namespace's `finalize` subresource: only `spec.finalizers` comes from
    /// the request.
    fn admit_finalize(&self, input: &Value, old: &Value) -> Result<Admitted, ApiError>;
    fn rollback_write(&self, new: &Value, old: Option<&Value>);
    fn after_write(&self, new: &Value, old: Option<&Value>);
    fn after_delete(&self, obj: &Value);
    /// Whether start-up should pass every stored object to `observe_existing`.
    fn observes_existing(&self) -> bool;
    fn observe_existing(&self, obj: &Value);
    fn graceful_delete(&self, obj: &Value, requested: Option<i64>) -> Option<i64>;
    /// Applies `prepare_for_delete` to a stored object.
    fn prepare_for_delete(&self, obj: &Value) -> Result<Value, ApiError>;
    fn has_pending_finalizers(&self, obj: &Value) -> bool;
}

/// Decodes JSON into `T`, reporting type errors with their path (400) and the fields `T` does
/// not have.
pub fn decode<T: ApiType>(input: Value) -> Result<(T, Vec<String>), ApiError> {
    let obj: T = serde_path_to_error::deserialize(&input).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {at}{inner}",
            T::KIND,
            T::VERSION,
            T::KIND
        ))
    })?;
    let round_trip = serde_json::to_value(&obj)
        .map_err(|e| ApiError::internal(format!("encoding {}: {e}", T::KIND)))?;
    let mut unknown = Vec::new();
    unknown_fields(&input, &round_trip, "", &mut unknown);
    Ok((obj, unknown))
}

/// Collects paths present (and non-null) in `input` but absent from `known`.
fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, &child, out),
                    None if v.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn encode<T: ApiType>(obj: &T) -> Result<Value, ApiError> {
    serde_json::to_value(obj).map_err(|e| ApiError::internal(format!("encoding {}: {e}", T::KIND)))
}

/// Decodes an object read back from storage; failure means corrupt storage, not bad input.
fn decode_stored<T: ApiType>(v: &Value) -> Result<T, ApiError> {
    // From the borrowed tree: no copy of the whole object first.
    T::deserialize(v)
        .map_err(|e| ApiError::internal(format!("stored {} could not be decoded: {e}", T::KIND)))
}

fn object_name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Everything outside `metadata` and `status`: what a generation counts changes of.
fn spec_part(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Makes a [`DynStrategy`] of a [`Strategy`].
pub struct Adapter<S: Strategy> {
    info: &'static ResourceInfo,
    strategy: S,
    _t: PhantomData<fn() -> S::Object>,
}

impl<S: Strategy> Adapter<S> {
    pub fn new(info: &'static ResourceInfo, strategy: S) -> Self {
        Adapter {
            info,
            strategy,
            _t: PhantomData,
        }
    }

    fn invalid(&self, name: &str, errors: Vec<FieldError>) -> ApiError {
        ApiError::invalid(self.info.group, self.info.kind, name, errors)
    }

    fn has_status(&self) -> bool {
        self.info.has_subresource("status")
    }
}

impl<S: Strategy> DynStrategy for Adapter<S> {
    fn info(&self) -> &'static ResourceInfo {
        self.info
    }

    fn tracks_generation(&self) -> bool {
        self.strategy.tracks_generation()
    }

    fn allow_create_on_update(&self) -> bool {
        self.strategy.allow_create_on_update()
    }

    fn allow_unconditional_update(&self) -> bool {
        self.strategy.allow_unconditional_update()
    }

    fn admit_create(&self, input: Value, dry_run: bool) -> Result<Admitted, ApiError> {
        let (mut obj, unknown_fields) = decode::<S::Object>(input)?;
        self.strategy.set_defaults(&mut obj);
        self.strategy.prepare_for_create(&mut obj);
        {
            let meta = k8s_openapi::Metadata::metadata_mut(&mut obj);
            meta.generation = self.strategy.tracks_generation().then_some(1);
        }
        let mut errors = meta::validate_object_meta(
            k8s_openapi::Metadata::metadata(&obj),
            self.info.namespaced,
            self.strategy.name_validation(),
        );
        errors.extend(self.strategy.validate(&obj));
        if !errors.is_empty() {
            let name = k8s_openapi::Metadata::metadata(&obj)
                .name
                .clone()
                .unwrap_or_default();
            return Err(self.invalid(&name, errors));
        }
        self.strategy.before_write(&mut obj, None, dry_run)?;
        Ok(Admitted {
            object: encode(&obj)?,
            unknown_fields,
        })
    }

    fn admit_update(
        &self,
        mut input: Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Admitted, ApiError> {
        // The main resource cannot change status: keep the stored one.
        if self.has_status()
            && let Value::Object(m) = &mut input
        {
            match old.get("status") {
                Some(s) => m.insert("status".to_string(), s.clone()),
                None => m.remove("status"),
            };
        }
        let (mut obj, unknown_fields) = decode::<S::Object>(input)?;
        let old_obj: S::Object = decode_stored(old)?;
        self.strategy.set_defaults(&mut obj);
        meta::carry_over_system_fields(
            k8s_openapi::Metadata::metadata_mut(&mut obj),
            k8s_openapi::Metadata::metadata(&old_obj),
        );
        self.strategy.prepare_for_update(&mut obj, &old_obj);
        if self.strategy.tracks_generation() {
            let changed = spec_part(&encode(&obj)?) != spec_part(old)
                || self.strategy.generation_changed(&obj, &old_obj);
            let meta = k8s_openapi::Metadata::metadata_mut(&mut obj);
            let base = k8s_openapi::Metadata::metadata(&old_obj)
                .generation
                .unwrap_or(1);
            meta.generation = Some(if changed { base + 1 } else { base });
        }
        let mut errors = meta::validate_object_meta(
            k8s_openapi::Metadata::metadata(&obj),
            self.info.namespaced,
            self.strategy.name_validation(),
        );
        errors.extend(meta::validate_object_meta_update(
            k8s_openapi::Metadata::metadata(&obj),
            k8s_openapi::Metadata::metadata(&old_obj),
        ));
        errors.extend(self.strategy.validate_update(&obj, &old_obj));
        if !errors.is_empty() {
            return Err(self.invalid(object_name(old), errors));
        }
        self.strategy
            .before_write(&mut obj, Some(&old_obj), dry_run)?;
        Ok(Admitted {
            object: encode(&obj)?,
            unknown_fields,
        })
    }

    fn admit_status_update(&self, input: Value, old: &Value) -> Result<Admitted, ApiError> {
        // Only `status` comes from the request; the rest is the stored object, so a status
        // writer can never change the spec or metadata (upstream's status strategies).
        let mut merged = old.clone();
        let mut unknown_fields = Vec::new();
        if let Value::Object(m) = &mut merged {
            match input.get("status") {
                Some(s) => m.insert("status".to_string(), s.clone()),
                None => m.remove("status"),
            };
        }
        if self.strategy.status_update_sets_annotations()
            && let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut)
        {
            match input.pointer("/metadata/annotations") {
                Some(a) if !a.is_null() => meta.insert("annotations".to_string(), a.clone()),
                _ => meta.remove("annotations"),
            };
        }
        let (mut obj, unknown) = decode::<S::Object>(merged)?;
        unknown_fields.extend(unknown);
        let old_obj: S::Object = decode_stored(old)?;
        // Defaulting applies to every decoded body, status writes included (upstream defaults
        // on decode).
        self.strategy.set_defaults(&mut obj);
        self.strategy.prepare_for_status_update(&mut obj, &old_obj);
        let errors = self.strategy.validate_status_update(&obj, &old_obj);
        if !errors.is_empty() {
            return Err(self.invalid(object_name(old), errors));
        }
        Ok(Admitted {
            object: encode(&obj)?,
            unknown_fields,
        })
    }

    fn admit_finalize(&self, input: &Value, old: &Value) -> Result<Admitted, ApiError> {
        let mut merged = old.clone();
        let finalizers = input
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(Value::Null);
        if let Value::Object(root) = &mut merged {
            let spec = root
                .entry("spec")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(spec) = spec {
                spec.insert("finalizers".to_string(), finalizers);
            }
        }
        let (mut obj, unknown_fields) = decode::<S::Object>(merged)?;
        self.strategy.set_defaults(&mut obj);
        let errors = self.strategy.validate(&obj);
        if !errors.is_empty() {
            return Err(self.invalid(object_name(old), errors));
        }
        Ok(Admitted {
            object: encode(&obj)?,
            unknown_fields,
        })
    }

    fn rollback_write(&self, new: &Value, old: Option<&Value>) {
        let Ok(new) = decode_stored::<S::Object>(new) else {
            return;
        };
        let old = old.and_then(|o| decode_stored::<S::Object>(o).ok());
        self.strategy.rollback_write(&new, old.as_ref());
    }

    fn after_write(&self, new: &Value, old: Option<&Value>) {
        let Ok(new) = decode_stored::<S::Object>(new) else {
            return;
        };
        let old = old.and_then(|o| decode_stored::<S::Object>(o).ok());
        self.strategy.after_write(&new, old.as_ref());
    }

    fn after_delete(&self, obj: &Value) {
        if let Ok(obj) = decode_stored::<S::Object>(obj) {
            self.strategy.after_delete(&obj);
        }
    }

    fn observes_existing(&self) -> bool {
        S::OBSERVES_EXISTING
    }

    fn observe_existing(&self, obj: &Value) {
        match decode_stored::<S::Object>(obj) {
            Ok(obj) => self.strategy.observe_existing(&obj),
            Err(e) => {
                tracing::warn!(resource = self.info.plural, error = %e, "skipping undecodable stored object")
            }
        }
    }

    fn graceful_delete(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        decode_stored::<S::Object>(obj)
            .ok()
            .and_then(|o| self.strategy.graceful_delete(&o, requested))
    }

    fn prepare_for_delete(&self, obj: &Value) -> Result<Value, ApiError> {
        let mut o: S::Object = decode_stored(obj)?;
        self.strategy.prepare_for_delete(&mut o);
        encode(&o)
    }

    fn has_pending_finalizers(&self, obj: &Value) -> bool {
        decode_stored::<S::Object>(obj)
            .map(|o| self.strategy.has_pending_finalizers(&o))
            .unwrap_or(false)
    }
}

/// The strategy of a resource with no behaviour of its own beyond the generic rules.
pub struct Plain<T>(PhantomData<fn() -> T>);

impl<T> Default for Plain<T> {
    fn default() -> Self {
        Plain(PhantomData)
    }
}

impl<T: ApiType> Strategy for Plain<T> {
    type Object = T;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn decode_reports_unknown_fields_and_type_errors() {
        let (cm, unknown) = decode::<ConfigMap>(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "bogus": 1, "labels": null},
            "data": {"k": "v"},
            "extra": {"x": 1},
        }))
        .unwrap();
        assert_eq!(cm.data.unwrap()["k"], "v");
        assert_eq!(
            unknown,
            vec!["extra".to_string(), "metadata.bogus".to_string()]
        );

        let err = decode::<ConfigMap>(json!({"metadata": {"name": 5}})).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("metadata.name"), "{}", err.message);
    }
}
