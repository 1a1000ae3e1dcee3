//! A type's JSON schema reduced to what strategic merge patch needs: for every object, its
//! fields with their patch metadata, and the schema of list items and map values.
//!
//! Built once per type from the `schemars` schema `k8s-openapi` provides (definitions are
//! named like `io.k8s.api.core.v1.Container`), joined with [`field_patch_meta`]. Building
//! walks every reachable definition, so build an index once per type and reuse it:
//! [`SchemaIndex::shared`] keeps one per Rust type for the life of the process.
//!
//! Fields the schema does not know (and values of free-form objects) get no metadata, so they
//! merge like JSON Merge Patch. Upstream errors in some of these places ("unable to find api
//! field", or "data type is not struct" inside maps of objects such as CRD schema
//! `properties`); merging is what a client means there.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};

use super::meta_table::{PatchMeta, field_patch_meta};

/// Per-type patch metadata; see the module documentation.
#[derive(Debug, Default)]
pub struct SchemaIndex {
    nodes: Vec<Node>,
    root: Option<NodeId>,
    root_definition: String,
}

type NodeId = usize;

#[derive(Debug)]
enum Node {
    Object {
        fields: HashMap<String, Field>,
        /// The schema of every value of a map (`additionalProperties`).
        values: Option<NodeId>,
    },
    Array {
        items: Option<NodeId>,
    },
    /// Scalars and free-form objects.
    Leaf,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    node: Option<NodeId>,
    meta: Option<PatchMeta>,
}

impl SchemaIndex {
    /// Builds the index of `T` from its `schemars` schema.
    pub fn for_type<T: JsonSchema + ?Sized>() -> SchemaIndex {
        let schema = SchemaGenerator::default().into_root_schema_for::<T>();
        SchemaIndex::from_root_schema(&T::schema_name(), schema.as_value())
    }

    /// The index of `T`, built on first use and shared afterwards.
    pub fn shared<T: JsonSchema + ?Sized + 'static>() -> Arc<SchemaIndex> {
        type Cache = RwLock<HashMap<TypeId, Arc<SchemaIndex>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let id = TypeId::of::<T>();
        if let Some(found) = cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Arc::clone(found);
        }
        // Built outside the lock: two first requests may both build; one result wins.
        let built = Arc::new(SchemaIndex::for_type::<T>());
        let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cache.entry(id).or_insert(built))
    }

    /// Builds an index from a root schema whose definitions live under `$defs` (or
    /// `definitions`, or `components/schemas`) and are referenced by `$ref`; a `$ref` of `#`
    /// refers to the root, named `root_definition`.
    pub fn from_root_schema(root_definition: &str, schema: &Value) -> SchemaIndex {
        let definitions = ["$defs", "definitions"]
            .iter()
            .find_map(|key| schema.get(key).and_then(Value::as_object))
            .or_else(|| {
                schema
                    .pointer("/components/schemas")
                    .and_then(Value::as_object)
            });
        let mut builder = Builder {
            definitions,
            root_name: root_definition,
            root_schema: schema,
            nodes: Vec::new(),
            by_name: HashMap::new(),
        };
        let root = builder.definition(root_definition);
        SchemaIndex {
            nodes: builder.nodes,
            root,
            root_definition: root_definition.to_string(),
        }
    }

    /// An index without any metadata: every list is atomic, every map merges. Strategic merge
    /// patch with it is JSON Merge Patch plus the `$`-directives.
    pub fn untyped() -> SchemaIndex {
        SchemaIndex::default()
    }

    /// The definition name of the root type (empty for [`SchemaIndex::untyped`]).
    pub fn root_definition(&self) -> &str {
        &self.root_definition
    }

    /// The patch metadata of the field at `path` (object field names; `"[]"` steps into list
    /// items or map values), e.g. `["spec", "template", "spec", "containers", "[]", "env"]`.
    pub fn patch_meta_at(&self, path: &[&str]) -> Option<PatchMeta> {
        let (last, parents) = path.split_last()?;
        let mut cursor = self.root();
        for step in parents {
            cursor = if *step == "[]" {
                cursor.element()
            } else {
                cursor.field(step).0
            };
        }
        cursor.field(last).1
    }

    pub(crate) fn root(&self) -> Cursor<'_> {
        Cursor {
            index: self,
            node: self.root,
        }
    }
}

/// A position in a [`SchemaIndex`]; a position the schema does not describe has no node.
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    index: &'a SchemaIndex,
    node: Option<NodeId>,
}

impl<'a> Cursor<'a> {
    /// The schema of member `name` of the object here, with the member's patch metadata.
    pub(crate) fn field(self, name: &str) -> (Cursor<'a>, Option<PatchMeta>) {
        let (node, meta) = match self.node.and_then(|id| self.index.nodes.get(id)) {
            Some(Node::Object { fields, values }) => match fields.get(name) {
                Some(field) => (field.node, field.meta),
                None => (*values, None),
            },
            _ => (None, None),
        };
        (
            Cursor {
                index: self.index,
                node,
            },
            meta,
        )
    }

    /// The schema of the elements of the list here.
    pub(crate) fn items(self) -> Cursor<'a> {
        let node = match self.node.and_then(|id| self.index.nodes.get(id)) {
            Some(Node::Array { items }) => *items,
            _ => None,
        };
        Cursor {
            index: self.index,
            node,
        }
    }
}

impl Cursor<'_> {
    /// List items or map values, whichever is here.
    fn element(self) -> Self {
        match self.node.and_then(|id| self.index.nodes.get(id)) {
            Some(Node::Object { values, .. }) => Cursor {
                index: self.index,
                node: *values,
            },
            _ => self.items(),
        }
    }
}

struct Builder<'s> {
    definitions: Option<&'s Map<String, Value>>,
    root_name: &'s str,
    root_schema: &'s Value,
    nodes: Vec<Node>,
    by_name: HashMap<String, NodeId>,
}

impl<'s> Builder<'s> {
    /// The node of a named definition, built once (the id is reserved before building so
    /// recursive definitions such as CRD `JSONSchemaProps` terminate).
    fn definition(&mut self, name: &str) -> Option<NodeId> {
        if let Some(id) = self.by_name.get(name) {
            return Some(*id);
        }
        let schema = if name == self.root_name {
            self.root_schema
        } else {
            self.definitions?.get(name)?
        };
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf);
        self.by_name.insert(name.to_string(), id);
        let node = self.build(schema, Some(name));
        if let Some(slot) = self.nodes.get_mut(id) {
            *slot = node;
        }
        Some(id)
    }

    /// The node of an inline schema, following `$ref`s; `None` for leaves.
    fn inline(&mut self, schema: &'s Value) -> Option<NodeId> {
        let object = schema.as_object()?;
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            let name = self.reference_name(reference)?;
            return self.definition(&name);
        }
        if let Some([only]) = object
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return self.inline(only);
        }
        match self.build(schema, None) {
            Node::Leaf => None,
            node => {
                self.nodes.push(node);
                Some(self.nodes.len() - 1)
            }
        }
    }

    fn build(&mut self, schema: &'s Value, definition: Option<&str>) -> Node {
        let Some(object) = schema.as_object() else {
            return Node::Leaf;
        };
        let is_array = match object.get("type") {
            Some(Value::String(t)) => t == "array",
            Some(Value::Array(types)) => types.iter().any(|t| t == "array"),
            _ => object.contains_key("items"),
        };
        if is_array {
            let items = object.get("items").and_then(|items| self.inline(items));
            return Node::Array { items };
        }
        let properties = object.get("properties").and_then(Value::as_object);
        let additional = object.get("additionalProperties").filter(|v| v.is_object());
        if properties.is_none() && additional.is_none() {
            return Node::Leaf;
        }
        let mut fields = HashMap::new();
        for (name, property) in properties.into_iter().flatten() {
            let node = self.inline(property);
            let meta = definition.and_then(|d| field_patch_meta(d, name));
            fields.insert(name.clone(), Field { node, meta });
        }
        let values = additional.and_then(|schema| self.inline(schema));
        Node::Object { fields, values }
    }

    /// `#` is the root; `#/<definitions path>/<name>` names a definition (JSON-pointer and
    /// percent encoded, as schemars writes it).
    fn reference_name(&self, reference: &str) -> Option<String> {
        if reference == "#" {
            return Some(self.root_name.to_string());
        }
        let (_, encoded) = reference.strip_prefix("#/")?.rsplit_once('/')?;
        Some(crate::json_patch::decode_token(&percent_decode(encoded)))
    }
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::{apps, core};
    use serde_json::json;

    #[test]
    fn pod_metadata_is_found_through_refs() {
        let index = SchemaIndex::for_type::<core::v1::Pod>();
        assert_eq!(index.root_definition(), "io.k8s.api.core.v1.Pod");
        let containers = index.patch_meta_at(&["spec", "containers"]);
        assert_eq!(containers.and_then(|m| m.merge_key), Some("name"));
        let env = index.patch_meta_at(&["spec", "containers", "[]", "env"]);
        assert_eq!(env.and_then(|m| m.merge_key), Some("name"));
        let ports = index.patch_meta_at(&["spec", "initContainers", "[]", "ports"]);
        assert_eq!(ports.and_then(|m| m.merge_key), Some("containerPort"));
        let finalizers = index.patch_meta_at(&["metadata", "finalizers"]);
        assert_eq!(
            finalizers.map(|m| (m.strategy, m.merge_key)),
            Some(("merge", None))
        );
        assert_eq!(index.patch_meta_at(&["spec", "tolerations"]), None);
        assert_eq!(index.patch_meta_at(&["spec", "nope"]), None);
    }

    #[test]
    fn deployment_reaches_pod_template() {
        let index = SchemaIndex::for_type::<apps::v1::Deployment>();
        let path = ["spec", "template", "spec", "volumes"];
        assert_eq!(
            index.patch_meta_at(&path).map(|m| m.strategy),
            Some("merge,retainKeys")
        );
        let strategy = index.patch_meta_at(&["spec", "strategy"]);
        assert_eq!(strategy.map(|m| m.strategy), Some("retainKeys"));
    }

    #[test]
    fn shared_returns_the_same_index() {
        let a = SchemaIndex::shared::<core::v1::Service>();
        let b = SchemaIndex::shared::<core::v1::Service>();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            a.patch_meta_at(&["spec", "ports"])
                .and_then(|m| m.merge_key),
            Some("port")
        );
    }

    #[test]
    fn recursive_and_map_valued_schemas() {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let index = SchemaIndex::for_type::<CustomResourceDefinition>();
        let root = ["spec", "versions", "[]", "schema", "openAPIV3Schema"];
        let nested: Vec<&str> = root
            .iter()
            .copied()
            .chain([
                "properties",
                "[]",
                "properties",
                "[]",
                "x-kubernetes-validations",
            ])
            .collect();
        assert_eq!(
            index.patch_meta_at(&nested).and_then(|m| m.merge_key),
            Some("rule")
        );
    }

    #[test]
    fn hand_written_schema_with_root_recursion_and_encoded_refs() {
        let schema = json!({
            "type": "object",
            "properties": {
                "child": {"$ref": "#"},
                "spec": {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec"},
                "odd": {"$ref": "#/$defs/a~1b%20c"},
                "list": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/a~1b%20c"}]}}
            },
            "$defs": {
                "io.k8s.api.core.v1.PodSpec": {
                    "type": "object",
                    "properties": {"containers": {"type": "array", "items": {"type": "object"}}}
                },
                "a/b c": {"type": "object", "properties": {"x": {"type": "string"}}}
            }
        });
        let index = SchemaIndex::from_root_schema("Root", &schema);
        let containers = index.patch_meta_at(&["child", "child", "spec", "containers"]);
        assert_eq!(containers.and_then(|m| m.merge_key), Some("name"));
        assert!(index.root().field("odd").0.node.is_some());
        assert!(index.root().field("list").0.items().node.is_some());
        assert!(index.root().field("missing").0.node.is_none());
    }

    #[test]
    fn untyped_has_no_metadata() {
        let index = SchemaIndex::untyped();
        assert_eq!(index.patch_meta_at(&["spec", "containers"]), None);
        assert_eq!(index.patch_meta_at(&[]), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
