//! A sweep over every field of every supported kind.
//!
//! prost messages cannot be enumerated, but they can be probed: appending one field with a given
//! tag and wire type to an encoded message and decoding it again either fails (wrong wire type),
//! changes nothing (unused tag), or makes exactly one field appear in the `Debug` rendering. Doing
//! that for tags 1..=50 at every message reachable from a kind discovers each field's tag, name
//! and shape, and yields a body in which every field (recursively) is present. That body must then
//!
//! * decode without error (every field has a JSON form), and
//! * match the v1.33 schema field for field: a proto field with no property is either a message
//!   embedded `json:",inline"` or one of the fields added after 1.33 listed below, and every
//!   property of every reached definition is fed by some proto field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::Value;

use crate::debug::{self, Node};
use crate::kinds::{KINDS, KindEntry};
use crate::schema::{Schemas, normalize, schemas};
use crate::special::Special;

/// Proto fields `k8s-pb` (generated from a newer Kubernetes) has and v1.33 does not. The decoder
/// ignores them, as a v1.33 apiserver would.
const NEWER_THAN_1_33: &[&str] = &[
    "io.k8s.api.core.v1.Container.restart_policy_rules",
    "io.k8s.api.core.v1.EnvVarSource.file_key_ref",
    "io.k8s.api.core.v1.EphemeralContainer.restart_policy_rules",
    "io.k8s.api.core.v1.NodeStatus.declared_features",
    "io.k8s.api.core.v1.PodSpec.hostname_override",
    "io.k8s.api.core.v1.PodSpec.workload_ref",
    "io.k8s.api.core.v1.PodStatus.allocated_resources",
    "io.k8s.api.core.v1.PodStatus.extended_resource_claim_status",
    "io.k8s.api.core.v1.PodStatus.resources",
    "io.k8s.api.core.v1.VolumeProjection.pod_certificate",
    "io.k8s.api.storage.v1.CSIDriverSpec.service_account_token_in_secrets",
];

/// A message under construction: fields in the order they are appended.
#[derive(Clone, Debug, Default)]
struct Msg(Vec<(u32, Val)>);

#[derive(Clone, Debug)]
enum Val {
    /// Length-delimited: an empty string, bytes, message or packed list.
    Empty,
    Varint,
    Fixed64,
    Fixed32,
    Msg(Msg),
}

const CANDIDATES: [Val; 4] = [Val::Empty, Val::Varint, Val::Fixed64, Val::Fixed32];

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, val) in &self.0 {
            match val {
                Val::Empty => {
                    encode_key(*tag, WireType::LengthDelimited, &mut out);
                    encode_varint(0, &mut out);
                }
                Val::Varint => {
                    encode_key(*tag, WireType::Varint, &mut out);
                    encode_varint(1, &mut out);
                }
                Val::Fixed64 => {
                    encode_key(*tag, WireType::SixtyFourBit, &mut out);
                    out.extend([0; 8]);
                }
                Val::Fixed32 => {
                    encode_key(*tag, WireType::ThirtyTwoBit, &mut out);
                    out.extend([0; 4]);
                }
                Val::Msg(m) => {
                    let inner = m.encode();
                    encode_key(*tag, WireType::LengthDelimited, &mut out);
                    encode_varint(inner.len() as u64, &mut out);
                    out.extend(inner);
                }
            }
        }
        out
    }
}

/// How a message-typed field holds its message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// An optional or repeated message field.
    Direct,
    /// The value of a map entry (entry field 2).
    MapValue,
}

/// One step from a message to a nested one.
#[derive(Clone, Debug)]
struct Step {
    tag: u32,
    field: String,
    via: Via,
}

/// What probing found about one message type.
#[derive(Clone, Debug)]
struct Explored {
    fields: Vec<Found>,
}

#[derive(Clone, Debug)]
struct Found {
    tag: u32,
    val: Val,
    /// For message-typed fields: how, and the fingerprint of the nested type.
    child: Option<(Via, String)>,
}

/// Probes messages through one kind's decoder. What it learns about a message type holds for
/// every kind, so the memo is shared. Top-level types are keyed with their group version too:
/// autoscaling v1's and v2's HorizontalPodAutoscaler have the same name and field names but
/// different specs. (A collision further down would make the populated body fail to decode or
/// fail the audit, so it cannot pass unnoticed.)
struct Prober<'m> {
    decode: crate::kinds::DecodeFn,
    scope: &'static str,
    memo: &'m mut HashMap<String, Explored>,
}

/// Puts `inner` at the end of `chain`, starting from an otherwise empty top-level message.
fn wrap(chain: &[Step], inner: &Msg) -> Msg {
    let mut cur = inner.clone();
    for step in chain.iter().rev() {
        let val = match step.via {
            Via::Direct => Val::Msg(cur),
            Via::MapValue => Val::Msg(Msg(vec![(2, Val::Msg(cur))])),
        };
        cur = Msg(vec![(step.tag, val)]);
    }
    cur
}

/// The struct at the end of `chain` in a decoded tree.
fn navigate<'a>(mut node: &'a Node, chain: &[Step]) -> Option<&'a Node> {
    for step in chain {
        let Node::Struct(_, fields) = node else {
            return None;
        };
        let (_, child) = fields.iter().find(|(f, _)| *f == step.field)?;
        node = match (child, step.via) {
            (Node::Some(inner), Via::Direct) => inner,
            (Node::List(items), Via::Direct) => items.first()?,
            (Node::Map(entries), Via::MapValue) => &entries.first()?.1,
            _ => return None,
        };
    }
    Some(node)
}

/// A message type's identity: its name and its field names (names alone collide across API
/// groups, e.g. rbac's and flowcontrol's `Subject`).
fn fingerprint(node: &Node) -> String {
    match node {
        Node::Struct(name, fields) => {
            let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
            format!("{name}{names:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Whether a field's value holds a message, and how.
fn message_via(node: &Node) -> Option<Via> {
    match node {
        Node::Some(inner) if matches!(**inner, Node::Struct(..)) => Some(Via::Direct),
        Node::List(items) if matches!(items.first(), Some(Node::Struct(..))) => Some(Via::Direct),
        Node::Map(entries) if matches!(entries.first(), Some((_, Node::Struct(..)))) => {
            Some(Via::MapValue)
        }
        _ => None,
    }
}

impl Prober<'_> {
    fn tree(&self, msg: &Msg) -> Option<Node> {
        let text = (self.decode)(&msg.encode()).ok()?;
        Some(debug::parse(&text).expect("our own Debug output parses"))
    }

    fn struct_at(&self, chain: &[Step], inner: &Msg) -> Option<Node> {
        let tree = self.tree(&wrap(chain, inner))?;
        navigate(&tree, chain).cloned()
    }

    /// Discovers the message type at `chain` and everything below it; returns its fingerprint.
    fn explore(&mut self, chain: &mut Vec<Step>, stack: &mut Vec<String>) -> String {
        let base = self
            .struct_at(chain, &Msg::default())
            .expect("an empty message decodes");
        let fp = if chain.is_empty() {
            format!("{} {}", self.scope, fingerprint(&base))
        } else {
            fingerprint(&base)
        };
        if self.memo.contains_key(&fp) || stack.contains(&fp) || chain.len() > 30 {
            return fp;
        }
        let Node::Struct(_, mut current) = base else {
            panic!("not a message at {chain:?}");
        };
        let mut msg = Msg::default();
        let mut found = Vec::new();
        let mut nested = Vec::new();
        for tag in 1..=50 {
            for candidate in CANDIDATES {
                msg.0.push((tag, candidate.clone()));
                let changed = match self.struct_at(chain, &msg) {
                    Some(Node::Struct(_, fields)) => {
                        let diff: Vec<_> = fields
                            .iter()
                            .zip(&current)
                            .filter(|(a, b)| a != b)
                            .map(|(a, _)| a.clone())
                            .collect();
                        assert!(diff.len() <= 1, "tag {tag} changed {diff:?}");
                        diff.into_iter().next().map(|d| (d, fields))
                    }
                    _ => None,
                };
                match changed {
                    Some(((name, value), fields)) => {
                        current = fields;
                        if let Some(via) = message_via(&value) {
                            nested.push((found.len(), tag, name, via));
                        }
                        found.push(Found {
                            tag,
                            val: candidate,
                            child: None,
                        });
                        break;
                    }
                    None => {
                        msg.0.pop();
                    }
                }
            }
        }
        stack.push(fp.clone());
        for (index, tag, field, via) in nested {
            chain.push(Step { tag, field, via });
            let child = self.explore(chain, stack);
            chain.pop();
            found[index].child = Some((via, child));
        }
        stack.pop();
        self.memo.insert(fp.clone(), Explored { fields: found });
        fp
    }

    /// A message of type `fp` with every field present, nested messages included (once per
    /// path, so recursive types stop).
    fn populated(&self, fp: &str, stack: &mut Vec<String>) -> Msg {
        let Some(explored) = self.memo.get(fp) else {
            return Msg::default();
        };
        stack.push(fp.to_string());
        let mut out = Msg::default();
        for f in &explored.fields {
            let val = match &f.child {
                Some((via, child)) if !stack.contains(child) => {
                    let inner = self.populated(child, stack);
                    match via {
                        Via::Direct => Val::Msg(inner),
                        Via::MapValue => Val::Msg(Msg(vec![(2, Val::Msg(inner))])),
                    }
                }
                _ => f.val.clone(),
            };
            out.0.push((f.tag, val));
        }
        stack.pop();
        out
    }
}

/// Walks a decoded tree next to the schema, recording proto fields without a property and the
/// properties reached.
struct Audit<'a> {
    schemas: &'a Schemas,
    unmatched: BTreeSet<String>,
    reached: BTreeMap<String, BTreeSet<String>>,
}

impl Audit<'_> {
    fn message(&mut self, node: &Node, def_name: &str) {
        let Node::Struct(_, fields) = node else {
            panic!("{def_name}: not a message: {node:?}");
        };
        let def = &self.schemas.definitions[def_name];
        self.reached.entry(def_name.to_string()).or_default();
        for (field, child) in fields {
            match def.properties.get(&normalize(field)) {
                Some(prop) => {
                    self.reached
                        .entry(def_name.to_string())
                        .or_default()
                        .insert(prop.name.clone());
                    self.value(child, &prop.schema);
                }
                None => match crate::convert::inlined(child, def) {
                    Some(inner) => self.message(inner, def_name),
                    None => {
                        self.unmatched.insert(format!("{def_name}.{field}"));
                    }
                },
            }
        }
    }

    fn value(&mut self, node: &Node, schema: &Value) {
        let node = match node {
            Node::Some(inner) => inner,
            other => other,
        };
        if let Some((name, _)) = self.schemas.resolve(schema) {
            if Special::by_definition(name).is_none() {
                self.message(node, name);
            }
            return;
        }
        match node {
            Node::List(items) if schema.get("format").and_then(Value::as_str) != Some("byte") => {
                for item in items {
                    self.value(item, &schema["items"]);
                }
            }
            Node::Map(entries) => {
                for (_, v) in entries {
                    self.value(v, &schema["additionalProperties"]);
                }
            }
            Node::Struct(_, fields) if schema["type"] == "array" => {
                // A named slice type such as ExtraValue.
                if let Some((_, Node::List(items))) = fields.first() {
                    for item in items {
                        self.value(item, &schema["items"]);
                    }
                }
            }
            _ => {}
        }
    }
}

fn populated_body(entry: &KindEntry, memo: &mut HashMap<String, Explored>) -> Vec<u8> {
    let mut prober = Prober {
        decode: entry.decode,
        scope: entry.api_version.unwrap_or("*"),
        memo,
    };
    let root = prober.explore(&mut Vec::new(), &mut Vec::new());
    let raw = prober.populated(&root, &mut Vec::new()).encode();
    super::body_with_raw(entry.api_version.unwrap_or("v1"), entry.kind, raw)
}

#[test]
fn every_field_of_every_kind_decodes_and_matches_the_schema() {
    let schemas = schemas();
    let mut audit = Audit {
        schemas,
        unmatched: BTreeSet::new(),
        reached: BTreeMap::new(),
    };
    let mut memo = HashMap::new();
    for entry in KINDS {
        let body = populated_body(entry, &mut memo);
        let json = crate::decode(&body)
            .unwrap_or_else(|e| panic!("{} {}: {e}", entry.kind, entry.api_version.unwrap_or("*")));
        assert_eq!(json["kind"], entry.kind);
        let raw = &body[crate::MAGIC.len()..];
        let unknown: k8s_pb::apimachinery::pkg::runtime::Unknown =
            prost::Message::decode(raw).expect("envelope");
        let text = (entry.decode)(&unknown.raw.unwrap_or_default()).expect("decodes");
        let tree = debug::parse(&text).expect("parses");
        audit.message(&tree, &(entry.definition)());
    }
    let expected: BTreeSet<String> = NEWER_THAN_1_33.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        audit.unmatched, expected,
        "proto fields without a v1.33 property"
    );

    let mut unfed = Vec::new();
    for (def, reached) in &audit.reached {
        let props = schemas.definitions[def].schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for prop in props {
            if prop != "apiVersion" && prop != "kind" && !reached.contains(&prop) {
                unfed.push(format!("{def}.{prop}"));
            }
        }
    }
    assert!(
        unfed.is_empty(),
        "v1.33 properties no proto field feeds: {unfed:#?}"
    );
    assert!(
        audit.reached.len() > 300,
        "only {} definitions reached",
        audit.reached.len()
    );
}
