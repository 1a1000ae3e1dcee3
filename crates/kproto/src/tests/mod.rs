//! Tests of the whole decoder: envelope handling here, then objects built with `k8s-pb`
//! ([`objects`]), bodies captured from real kubectl ([`kubectl`]) and a sweep over every field of
//! every supported kind ([`coverage`]).

mod coverage;
mod kubectl;
mod objects;

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;

use crate::{ProtoError, decode, is_protobuf};

/// A request body as client-go writes it: magic, then the envelope around `raw`.
pub fn body_with_raw(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = crate::MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// The body for `msg`.
pub fn body(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    body_with_raw(api_version, kind, msg.encode_to_vec())
}

#[test]
fn content_type_detection() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "Application/VND.Kubernetes.Protobuf; charset=utf-8"
    ));
    assert!(is_protobuf(
        " application/vnd.kubernetes.protobuf ;stream=watch"
    ));
    assert!(!is_protobuf("application/json"));
    assert!(!is_protobuf("application/vnd.kubernetes.protobuf+json"));
    assert!(!is_protobuf(""));
}

#[test]
fn body_without_magic_is_refused_with_upstreams_words() {
    let err = decode(br#"{"kind":"Namespace"}"#).expect_err("not protobuf");
    assert!(matches!(err, ProtoError::MissingMagic));
    assert_eq!(
        err.to_string(),
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    );
    assert!(matches!(decode(b""), Err(ProtoError::MissingMagic)));
}

#[test]
fn broken_envelope_is_malformed() {
    // Field 1, length-delimited, claiming 100 bytes that are not there.
    let err = decode(b"k8s\0\x0a\x64ab").expect_err("truncated");
    assert!(matches!(err, ProtoError::Envelope(_)), "{err:?}");
}

#[test]
fn envelope_must_name_a_kind() {
    let mut body = crate::MAGIC.to_vec();
    body.extend(Unknown::default().encode_to_vec());
    assert!(matches!(decode(&body), Err(ProtoError::MissingKind)));
}

#[test]
fn unknown_kind_is_named_in_the_error() {
    let err = decode(&body_with_raw("v1", "Frobnicator", vec![])).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "no kind \"Frobnicator\" is registered for version \"v1\" in protobuf request bodies"
    );
    // A served kind in a version that is not served is just as unknown.
    let err = decode(&body_with_raw("apps/v1beta1", "Deployment", vec![])).expect_err("unknown");
    assert!(matches!(err, ProtoError::UnknownKind { .. }), "{err:?}");
}

#[test]
fn compressed_payload_is_refused() {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
        }),
        raw: Some(vec![]),
        content_encoding: Some("gzip".into()),
        content_type: None,
    };
    let mut body = crate::MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    let err = decode(&body).expect_err("gzip");
    assert_eq!(
        err.to_string(),
        "unsupported contentEncoding \"gzip\" in the protobuf envelope"
    );
}

#[test]
fn malformed_object_bytes_are_reported_with_the_kind() {
    // Field 1 (metadata) with a length running past the end.
    let err = decode(&body_with_raw("v1", "Namespace", vec![0x0a, 0x10, 0x0a])).expect_err("bad");
    assert!(
        err.to_string()
            .starts_with("unable to decode v1 Namespace from protobuf: "),
        "{err}"
    );
    // A string field holding invalid UTF-8.
    let err = decode(&body_with_raw(
        "v1",
        "Namespace",
        vec![0x0a, 0x03, 0x0a, 0x01, 0xff],
    ))
    .expect_err("bad utf-8");
    assert!(matches!(err, ProtoError::Malformed { .. }), "{err:?}");
}

#[test]
fn empty_raw_is_an_empty_object_of_the_kind() {
    let v = decode(&body_with_raw("v1", "Namespace", vec![])).expect("decodes");
    assert_eq!(
        v,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace"})
    );
}

/// Arbitrary bytes never panic the decoder; they either decode or give an error.
#[test]
fn fuzzed_bodies_never_panic() {
    let seed = body(
        "apps/v1",
        "Deployment",
        &k8s_pb::api::apps::v1::Deployment {
            metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("d".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    // A small deterministic generator: enough variety without a fuzzing dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let mut b = seed.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let _ = decode(&b);
        let cut = (next() as usize) % b.len();
        let _ = decode(&b[..cut]);
    }
}
