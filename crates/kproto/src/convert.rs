//! Turns a decoded message ([`Node`] tree) into JSON by walking it next to the kind's schema.
//!
//! The schema supplies what the proto encoding lost: the JSON field names, which `bytes` are
//! base64 strings rather than lists, which messages are really lists (`ExtraValue`) and which
//! definitions have their own JSON form ([`Special`]).
//!
//! Field presence follows the wire, except that zero values Go's JSON encoder would leave out
//! are left out ([`crate::zero`]); empty lists and maps are left out (Go decodes them as nil),
//! and messages are kept even when empty (`{}`), as Go serializes non-pointer structs.
//!
//! A message-typed proto field without a property of its own whose fields are the parent's
//! properties is a Go struct embedded with `json:",inline"`; its fields join the parent object
//! ([`inlined`]). Other proto fields without a property
//! in the v1.33 schema (fields added after 1.33) are ignored, as a v1.33 apiserver ignores
//! unknown protobuf fields.

use serde_json::{Map, Value};

use crate::debug::Node;
use crate::error::ProtoError;
use crate::schema::{Definition, Schemas, normalize};
use crate::special::{self, Special};

/// Converts the top-level message of `kind` using its schema definition `definition`. `depth`
/// counts the protobuf envelopes this object is embedded in (see [`crate::decode_embedded`]).
pub fn to_json(
    schemas: &Schemas,
    kind: &str,
    definition: &str,
    node: &Node,
    depth: usize,
) -> Result<Value, ProtoError> {
    let walker = Walker {
        schemas,
        kind,
        depth,
    };
    let Some(def) = schemas.definitions.get(definition) else {
        return Err(walker.fail(&Path::Root, format!("no schema for {definition}")));
    };
    Ok(walker
        .object(node, def, &Path::Root)?
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Where in the object a value sits; rendered only for error messages.
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Field(Path::Root, name) => (*name).to_string(),
            Path::Field(parent, name) => format!("{}.{name}", parent.render()),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
            Path::Key(parent, key) => format!("{}[{key}]", parent.render()),
        }
    }
}

struct Walker<'a> {
    schemas: &'a Schemas,
    kind: &'a str,
    depth: usize,
}

type Converted = Result<Option<Value>, ProtoError>;

impl Walker<'_> {
    fn fail(&self, path: &Path, reason: impl Into<String>) -> ProtoError {
        let path = path.render();
        ProtoError::Field {
            kind: self.kind.to_string(),
            path: if path.is_empty() {
                "(object)".into()
            } else {
                path
            },
            reason: reason.into(),
        }
    }

    /// Converts `node` as described by `schema` (inline or a `$ref`).
    fn value(&self, node: &Node, schema: &Value, path: &Path) -> Converted {
        let node = match node {
            Node::None => return Ok(None),
            Node::Some(inner) => inner.as_ref(),
            other => other,
        };
        if schema.get("$ref").is_some() {
            let Some((name, def)) = self.schemas.resolve(schema) else {
                return Err(self.fail(path, "schema reference does not resolve"));
            };
            if let Some(special) = Special::by_definition(name) {
                return special
                    .convert(node, self.depth)
                    .map_err(|e| self.fail(path, e));
            }
            if def.schema.get("$ref").is_none()
                && def.schema.get("type").and_then(Value::as_str) != Some("object")
            {
                // A named scalar or list type: its definition is the inline schema.
                return self.value(node, &def.schema, path);
            }
            return self.object(node, def, path);
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("array") => self.list(node, schema, path),
            Some("object") => self.map(node, schema, path),
            Some("string") => self.string(node, schema, path),
            Some("integer") => self.integer(node, path),
            Some("number") => self.number(node, path),
            Some("boolean") => match node {
                Node::Bool(b) => Ok(Some(Value::Bool(*b))),
                _ => Err(self.fail(path, "expected a boolean")),
            },
            _ => Err(self.fail(path, "the schema gives this field no JSON form")),
        }
    }

    /// A message described by a named definition.
    fn object(&self, node: &Node, def: &Definition, path: &Path) -> Converted {
        let mut out = Map::new();
        self.fill(node, def, path, &mut out)?;
        Ok(Some(Value::Object(out)))
    }

    /// Adds the fields of message `node` to `out` as properties of `def`.
    fn fill(
        &self,
        node: &Node,
        def: &Definition,
        path: &Path,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtoError> {
        let Node::Struct(_, fields) = node else {
            return Err(self.fail(path, "expected a message"));
        };
        for (field, child) in fields {
            let Some(prop) = def.properties.get(&normalize(field)) else {
                if let Some(inner) = inlined(child, def) {
                    self.fill(inner, def, path, out)?;
                }
                // Otherwise a field newer than the served schema: ignored, as a v1.33
                // apiserver ignores unknown proto fields.
                continue;
            };
            let child_path = Path::Field(path, &prop.name);
            match self.value(child, &prop.schema, &child_path)? {
                Some(v) if !(prop.omit_zero && is_zero(&v)) => {
                    out.insert(prop.name.clone(), v);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn list(&self, node: &Node, schema: &Value, path: &Path) -> Converted {
        if let Node::Ints(ints) = node {
            // Integers need no schema walk; any other item type cannot hold them.
            return match schema.get("items").and_then(|i| i.get("type")) {
                Some(t) if t == "integer" => {
                    Ok(Some(ints.iter().map(|&n| Value::from(n)).collect()))
                }
                _ => Err(self.fail(path, "expected a list of integers")),
            };
        }
        let items = match node {
            Node::List(items) => items,
            // A named slice type (`ExtraValue []string`) travels as a message with one
            // repeated `items` field and is a plain list in JSON.
            Node::Struct(_, fields) if fields.len() == 1 && fields[0].0 == "items" => {
                match &fields[0].1 {
                    Node::List(items) => items,
                    _ => return Err(self.fail(path, "expected a list")),
                }
            }
            _ => return Err(self.fail(path, "expected a list")),
        };
        if items.is_empty() {
            return Ok(None);
        }
        let Some(item_schema) = schema.get("items") else {
            return Err(self.fail(path, "the schema gives no item type"));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = Path::Index(path, i);
            let v = self.value(item, item_schema, &item_path)?;
            out.push(v.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Array(out)))
    }

    fn map(&self, node: &Node, schema: &Value, path: &Path) -> Converted {
        let Node::Map(entries) = node else {
            return Err(self.fail(path, "expected a map"));
        };
        if entries.is_empty() {
            return Ok(None);
        }
        let Some(value_schema) = schema.get("additionalProperties") else {
            return Err(self.fail(path, "the schema gives no map value type"));
        };
        let mut out = Map::new();
        for (key, value) in entries {
            let Node::Str(key) = key else {
                return Err(self.fail(path, "map keys must be strings"));
            };
            let entry_path = Path::Key(path, key);
            let v = self.value(value, value_schema, &entry_path)?;
            out.insert(key.clone(), v.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Object(out)))
    }

    fn string(&self, node: &Node, schema: &Value, path: &Path) -> Converted {
        if schema.get("format").and_then(Value::as_str) == Some("byte") {
            let raw = special::bytes(node).map_err(|e| self.fail(path, e))?;
            return Ok(Some(Value::String(special::base64(&raw))));
        }
        match node {
            Node::Str(s) => Ok(Some(Value::String(s.clone()))),
            // meta/v1 Duration: a message of nanoseconds, a Go duration string in JSON.
            Node::Struct(name, fields) if name == "Duration" => {
                match special::field(fields, "duration") {
                    None => Ok(Some(Value::String(special::go_duration(0)))),
                    Some(Node::Num(n)) => n
                        .parse()
                        .map(|n| Some(Value::String(special::go_duration(n))))
                        .map_err(|_| self.fail(path, "duration is not an integer")),
                    Some(_) => Err(self.fail(path, "expected a duration")),
                }
            }
            _ => Err(self.fail(path, "expected a string")),
        }
    }

    fn integer(&self, node: &Node, path: &Path) -> Converted {
        let Node::Num(n) = node else {
            return Err(self.fail(path, "expected an integer"));
        };
        if let Ok(i) = n.parse::<i64>() {
            return Ok(Some(Value::from(i)));
        }
        n.parse::<u64>()
            .map(|u| Some(Value::from(u)))
            .map_err(|_| self.fail(path, format!("{n} is not an integer")))
    }

    fn number(&self, node: &Node, path: &Path) -> Converted {
        let Node::Num(n) = node else {
            return Err(self.fail(path, "expected a number"));
        };
        n.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|f| Some(Value::Number(f)))
            .ok_or_else(|| self.fail(path, format!("{n} has no JSON form")))
    }
}

/// The message in `child` if it is a Go struct embedded with `json:",inline"` in a message of
/// `def` (a Probe's ProbeHandler, a Volume's VolumeSource, an IngressRule's IngressRuleValue):
/// nested in proto, but sharing its parent's JSON object. Such a struct is recognised by its
/// field names: most of them are properties of the parent. A message field added after v1.33
/// (say EnvVarSource's `fileKeyRef`) has names of its own and is not mistaken for one.
pub fn inlined<'n>(child: &'n Node, def: &Definition) -> Option<&'n Node> {
    let Node::Some(inner) = child else {
        return None;
    };
    let Node::Struct(_, fields) = inner.as_ref() else {
        return None;
    };
    // A field counts as shared when it is a property of `def` or is itself an inlined struct
    // (admissionregistration's NamedRuleWithOperations inlines RuleWithOperations, which
    // inlines Rule).
    let shared = fields
        .iter()
        .filter(|(f, v)| def.properties.contains_key(&normalize(f)) || inlined(v, def).is_some())
        .count();
    (2 * shared > fields.len()).then_some(inner.as_ref())
}

/// The zero value of a JSON scalar: `""`, `0` or `false`.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}
