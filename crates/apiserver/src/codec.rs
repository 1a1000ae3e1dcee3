//! Request bodies in, responses out: size limits, media types, decoding (JSON, YAML, protobuf)
//! and content negotiation (JSON, YAML, `Table`, `PartialObjectMetadata`).

use std::fmt;

use api::ApiError;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Upstream's limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Reads a request body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
    }
}

/// The media type of a request body, without parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

impl BodyType {
    pub fn from_content_type(ct: Option<&str>) -> Result<BodyType, ApiError> {
        let raw = ct.unwrap_or("application/json");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Ok(match essence.as_str() {
            "" | "application/json" | "*/*" => BodyType::Json,
            "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
            "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
            "application/json-patch+json" => BodyType::JsonPatch,
            "application/merge-patch+json" => BodyType::MergePatch,
            "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => BodyType::ApplyPatch,
            _ => return Err(ApiError::unsupported_media_type(raw)),
        })
    }
}

/// Decodes an object body of the given type into JSON. With `strict`, duplicate fields are
/// an error (upstream's strict decoding); otherwise the last occurrence wins and the
/// duplicates are returned as warnings.
pub fn decode_object(
    body: &[u8],
    ty: BodyType,
    strict: bool,
) -> Result<(Value, Vec<String>), ApiError> {
    match ty {
        BodyType::Json => decode_json(body, strict),
        BodyType::Yaml => {
            let v: Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            Ok((v, Vec::new()))
        }
        BodyType::Protobuf => kproto::decode(body)
            .map(|v| (v, Vec::new()))
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}"))),
        other => Err(ApiError::unsupported_media_type(&format!("{other:?}"))),
    }
}

/// Parses JSON, reporting duplicate object keys with their path.
pub fn decode_json(body: &[u8], strict: bool) -> Result<(Value, Vec<String>), ApiError> {
    let mut dups = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let v = DupValue {
        path: String::new(),
        dups: &mut dups,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?;
    let msgs: Vec<String> = dups
        .into_iter()
        .map(|p| format!("duplicate field \"{p}\""))
        .collect();
    if strict && !msgs.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            msgs.join(", ")
        )));
    }
    Ok((v, msgs))
}

/// A `Value` deserializer that notes duplicate keys (serde_json silently keeps the last).
struct DupValue<'a> {
    path: String,
    dups: &'a mut Vec<String>,
}

impl<'de> de::DeserializeSeed<'de> for DupValue<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

use de::DeserializeSeed as _;

impl<'de> Visitor<'de> for DupValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        let mut i = 0usize;
        loop {
            let seed = DupValue {
                path: format!("{}[{i}]", self.path),
                dups: &mut *self.dups,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
            i += 1;
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            let v = map.next_value_seed(DupValue {
                path: path.clone(),
                dups: &mut *self.dups,
            })?;
            if out.insert(key, v).is_some() {
                self.dups.push(path);
            }
        }
        Ok(Value::Object(out))
    }
}

/// What the client asked the response to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table,
    PartialObjectMetadata,
    PartialObjectMetadataList,
    /// Aggregated discovery (`apidiscovery.k8s.io/v2`).
    DiscoveryV2,
}

/// One entry of an `Accept` header.
#[derive(Debug)]
struct MediaRange<'a> {
    essence: String,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|part| {
            let mut it = part.split(';');
            let essence = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// Chooses the response format from `Accept`. Protobuf is not produced; clients that list it
/// also accept JSON (client-go and kubectl always add it), so JSON is chosen for them.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for m in parse_accept(accept) {
        let param = |k: &str| {
            m.params
                .iter()
                .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                .map(|(_, v)| *v)
        };
        let json_like = matches!(
            m.essence.as_str(),
            "application/json" | "*/*" | "application/*"
        );
        match (param("as"), param("g"), param("v")) {
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) if json_like => {
                return Ok(Output::Table);
            }
            (Some("PartialObjectMetadata"), Some("meta.k8s.io"), Some("v1" | "v1beta1"))
                if json_like =>
            {
                return Ok(Output::PartialObjectMetadata);
            }
            (Some("PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1" | "v1beta1"))
                if json_like =>
            {
                return Ok(Output::PartialObjectMetadataList);
            }
            (
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some("v2" | "v2beta1"),
            ) if json_like => {
                return Ok(Output::DiscoveryV2);
            }
            (Some(_), _, _) => continue, // a transformation we do not offer
            _ => {}
        }
        match m.essence.as_str() {
            "application/json" | "*/*" | "application/*" => return Ok(Output::Json),
            "application/yaml" => return Ok(Output::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io",
    ))
}

/// The `Content-Type` of a response in `output` form.
pub fn content_type(output: Output) -> &'static str {
    match output {
        Output::Json => "application/json",
        Output::Yaml => "application/yaml",
        Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::PartialObjectMetadata => {
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
        }
        Output::PartialObjectMetadataList => {
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
        }
        Output::DiscoveryV2 => {
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_fields() {
        let (v, warn) = decode_json(br#"{"a":1,"b":{"c":1,"c":2},"a":3}"#, false).unwrap();
        assert_eq!(v["a"], 3);
        assert_eq!(v["b"]["c"], 2);
        assert_eq!(
            warn,
            vec!["duplicate field \"b.c\"", "duplicate field \"a\""]
        );
        let err = decode_json(br#"{"a":1,"a":2}"#, true).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("duplicate field \"a\""));
        assert_eq!(decode_json(b"{", false).unwrap_err().code, 400);
        assert_eq!(decode_json(b"{} trailing", false).unwrap_err().code, 400);
    }

    #[test]
    fn negotiation() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(kubectl_get)).unwrap(), Output::Table);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).unwrap(),
            Output::Json
        );
        assert_eq!(negotiate(None).unwrap(), Output::Json);
        assert_eq!(
            negotiate(Some("application/json;as=Foo;g=x;v=y"))
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"))
                .unwrap_err()
                .code,
            406
        );
        assert_eq!(
            negotiate(Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")).unwrap(),
            Output::DiscoveryV2
        );
    }

    #[test]
    fn body_types() {
        assert_eq!(
            BodyType::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            BodyType::Json
        );
        assert_eq!(BodyType::from_content_type(None).unwrap(), BodyType::Json);
        assert_eq!(
            BodyType::from_content_type(Some("text/plain"))
                .unwrap_err()
                .code,
            415
        );
    }
}
