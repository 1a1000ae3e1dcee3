//! Secrets: `stringData` folded into `data`, type `Opaque` by default, the keys each
//! well-known type requires, the 1 MiB limit, type immutability and `immutable: true`, as
//! upstream's conversion, `SetDefaults_Secret` and `ValidateSecret(Update)`.

use std::sync::Arc;

use api::resources::ResourceInfo;
use api::validation::{FieldError, Path};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use crate::DynStrategy;
use crate::core::common::{self, go};
use crate::core::configmaps::{MAX_SIZE, immutable_errors};
use crate::strategy::{Adapter, Strategy};

const REDACTED: &str = "<secret contents redacted>";

pub fn strategy(info: &'static ResourceInfo) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Secrets))
}

struct Secrets;

/// Go's `json.Unmarshal` error for data that is not a JSON object, approximately worded as
/// Go words it.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(_)) => None,
        Ok(v) => {
            let kind = match v {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "bool",
                _ => return None, // null unmarshals into a map as a no-op
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".to_string()),
        Err(e) => {
            let offset = byte_offset(bytes, e.line(), e.column());
            let c = bytes.get(offset).copied().unwrap_or(b' ') as char;
            Some(format!(
                "invalid character {c:?} looking for beginning of value"
            ))
        }
    }
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut cur_line = 1;
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if cur_line == line {
            break;
        }
        if *b == b'\n' {
            cur_line += 1;
            start = i + 1;
        }
    }
    (start + column).saturating_sub(1)
}

impl Strategy for Secrets {
    type Object = Secret;

    fn set_defaults(&self, s: &mut Secret) {
        // The v1 → internal conversion writes stringData over data and drops it.
        if let Some(string_data) = s.string_data.take() {
            let data = s.data.get_or_insert_with(Default::default);
            for (k, v) in string_data {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
        if s.type_.as_deref().unwrap_or("").is_empty() {
            s.type_ = Some("Opaque".to_string());
        }
    }

    fn validate(&self, s: &Secret) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let data_path = Path::new("data");
        let empty = Default::default();
        let data = s.data.as_ref().unwrap_or(&empty);
        let mut total = 0usize;
        for (key, value) in data {
            for msg in common::config_map_key(key) {
                errs.push(FieldError::invalid(data_path.key(key), key.as_str(), msg));
            }
            total += value.0.len();
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long(&data_path, MAX_SIZE));
        }
        let required = |key: &str, errs: &mut Vec<FieldError>| {
            errs.push(FieldError::required(data_path.key(key), ""));
        };
        match s.type_.as_deref().unwrap_or("") {
            "kubernetes.io/service-account-token" => {
                let name_key = "kubernetes.io/service-account.name";
                let has = s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(name_key))
                    .is_some_and(|v| !v.is_empty());
                if !has {
                    errs.push(FieldError::required(
                        Path::new("metadata").child("annotations").key(name_key),
                        "",
                    ));
                }
            }
            t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
                let key = if t == "kubernetes.io/dockercfg" {
                    ".dockercfg"
                } else {
                    ".dockerconfigjson"
                };
                match data.get(key) {
                    None => required(key, &mut errs),
                    Some(bytes) => {
                        if let Some(msg) = json_object_error(&bytes.0) {
                            errs.push(common::invalid_raw(
                                data_path.key(key),
                                go::quote(REDACTED),
                                msg,
                            ));
                        }
                    }
                }
            }
            "kubernetes.io/basic-auth"
                if !data.contains_key("username") && !data.contains_key("password") =>
            {
                required("username", &mut errs);
                required("password", &mut errs);
            }
            "kubernetes.io/ssh-auth"
                if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) =>
            {
                required("ssh-privatekey", &mut errs);
            }
            "kubernetes.io/tls" => {
                for key in ["tls.crt", "tls.key"] {
                    if !data.contains_key(key) {
                        required(key, &mut errs);
                    }
                }
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, new: &Secret, old: &Secret) -> Vec<FieldError> {
        let mut errs = Vec::new();
        common::immutable_str(
            &Path::new("type"),
            new.type_.as_deref(),
            old.type_.as_deref(),
            &mut errs,
        );
        errs.extend(immutable_errors(
            old.immutable,
            new.immutable,
            &[("data", new.data != old.data)],
        ));
        errs.extend(self.validate(new));
        errs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;
    use crate::core::testing::*;
    use serde_json::json;

    fn s() -> Arc<dyn DynStrategy> {
        strategy(api::resources::lookup("", "v1", "secrets").unwrap())
    }

    fn secret(extra: serde_json::Value) -> serde_json::Value {
        merged(
            &json!({"metadata": {"name": "s", "namespace": "default"}}),
            extra,
        )
    }

    #[test]
    fn string_data_and_type_default() {
        let out = create(
            &*s(),
            secret(json!({"data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "z"}})),
        )
        .unwrap();
        assert_eq!(out["type"], "Opaque");
        assert_eq!(out["data"], json!({"a": "eA==", "b": "eg=="}));
        assert!(out.get("stringData").is_none());
    }

    #[test]
    fn typed_secrets_need_their_keys() {
        assert_eq!(
            create_err(
                &*s(),
                secret(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}}))
            ),
            ["data[tls.key]: Required value"]
        );
        assert_eq!(
            create_err(&*s(), secret(json!({"type": "kubernetes.io/basic-auth"}))),
            [
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        assert!(
            create(
                &*s(),
                secret(json!({"type": "kubernetes.io/basic-auth", "stringData": {"password": ""}}))
            )
            .is_ok()
        );
        assert_eq!(
            create_err(&*s(), secret(json!({"type": "kubernetes.io/ssh-auth"}))),
            ["data[ssh-privatekey]: Required value"]
        );
        assert_eq!(
            create_err(
                &*s(),
                secret(json!({"type": "kubernetes.io/service-account-token"}))
            ),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        assert_eq!(
            create_err(
                &*s(),
                secret(
                    json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "x"}})
                )
            ),
            [
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of value"
            ]
        );
        assert!(create(
            &*s(),
            secret(json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\":{}}"}}))
        )
        .is_ok());
        assert!(create(&*s(), secret(json!({"type": "example.com/custom"}))).is_ok());
    }

    #[test]
    fn keys_and_size() {
        let big = "x".repeat(MAX_SIZE + 1);
        assert_eq!(
            create_err(&*s(), secret(json!({"stringData": {"k": big, "a b": ""}}))),
            [
                "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data: Too long: may not be more than 1048576 bytes",
            ]
        );
    }

    #[test]
    fn type_and_immutable() {
        let old = create(
            &*s(),
            secret(json!({"immutable": true, "stringData": {"a": "b"}})),
        )
        .unwrap();
        assert_eq!(
            update_err(
                &*s(),
                merged(
                    &old,
                    json!({"type": "other/type", "stringData": {"a": "c"}})
                ),
                &old
            ),
            [
                "type: Invalid value: \"other/type\": field is immutable",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        assert_eq!(
            update_err(&*s(), merged(&old, json!({"immutable": null})), &old),
            ["immutable: Forbidden: field is immutable when `immutable` is set"]
        );
    }
}
