//! The JSON schemas of every kind in [`crate::kinds::KINDS`], indexed for the decoder.
//!
//! The schemas come from `k8s-openapi`'s `schemars` impls, which mirror upstream's OpenAPI
//! definitions for v1.33: property names exactly as the JSON API spells them (`podIP`,
//! `volumeID`, `x-kubernetes-...`), `required` lists, and `$ref`s to named definitions. prost
//! renamed the proto fields to snake_case, which loses the original capitalisation, so proto
//! fields are matched to properties through [`normalize`] (lowercase alphanumerics only); a unit
//! test checks that no two properties of one definition normalize alike.
//!
//! The index is built once, on first use, and never changes afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::kinds::KINDS;

/// A property of a definition.
#[derive(Debug)]
pub struct Property {
    /// The JSON name, e.g. `podIP`.
    pub name: String,
    pub schema: Value,
    /// Go's JSON encoder leaves this property out when it holds its zero value (see
    /// [`crate::zero`]).
    pub omit_zero: bool,
}

/// A named definition with its properties indexed by [`normalize`]d name.
#[derive(Debug)]
pub struct Definition {
    pub schema: Value,
    pub properties: HashMap<String, Property>,
}

/// All definitions reachable from the kinds table.
#[derive(Debug)]
pub struct Schemas {
    pub definitions: HashMap<String, Definition>,
}

/// The lowercase ASCII alphanumerics of `name`: the part of a field name that both the upstream
/// JSON name and prost's snake_case rendering of it keep (`podIP` and `pod_ip`, `r#type` and
/// `type`, `x-kubernetes-map-type` and `x_kubernetes_map_type` agree).
pub fn normalize(name: &str) -> String {
    let name = name.strip_prefix("r#").unwrap_or(name);
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The process-wide index.
pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(build)
}

fn build() -> Schemas {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    for kind in KINDS {
        (kind.register)(&mut generator);
    }
    let definitions = generator
        .take_definitions(true)
        .into_iter()
        .map(|(name, schema)| {
            let def = index(&name, schema);
            (name, def)
        })
        .collect();
    Schemas { definitions }
}

fn index(definition: &str, schema: Value) -> Definition {
    let required: HashSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let properties = props
        .iter()
        .map(|(name, prop)| {
            let required = required.contains(name.as_str());
            let ty = prop.get("type").and_then(Value::as_str).unwrap_or("");
            let property = Property {
                name: name.clone(),
                schema: prop.clone(),
                omit_zero: crate::zero::omitted_when_zero(definition, name, ty, required),
            };
            (normalize(name), property)
        })
        .collect();
    Definition { schema, properties }
}

impl Schemas {
    /// The definition a `$ref` schema points at, with its name.
    pub fn resolve<'a>(&'a self, schema: &Value) -> Option<(&'a str, &'a Definition)> {
        let reference = schema.get("$ref")?.as_str()?;
        let name = reference.rsplit('/').next()?;
        self.definitions
            .get_key_value(name)
            .map(|(name, def)| (name.as_str(), def))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_json_names_to_prost_names() {
        assert_eq!(normalize("podIP"), normalize("pod_ip"));
        assert_eq!(normalize("externalIPs"), normalize("external_i_ps"));
        assert_eq!(normalize("type"), normalize("r#type"));
        assert_eq!(
            normalize("x-kubernetes-map-type"),
            normalize("x_kubernetes_map_type")
        );
        assert_ne!(normalize("name"), normalize("names"));
    }

    #[test]
    fn every_kind_has_its_definition_indexed() {
        let s = schemas();
        for kind in KINDS {
            let name = (kind.definition)();
            let def = s
                .definitions
                .get(name.as_ref())
                .expect("definition present");
            assert!(
                def.properties.contains_key("metadata") || kind.api_version.is_none(),
                "{name} has no metadata property"
            );
        }
        let ns = &s.definitions["io.k8s.api.core.v1.PodStatus"];
        assert_eq!(ns.properties["podip"].name, "podIP");
        let port = &s.definitions["io.k8s.api.core.v1.ContainerPort"];
        assert!(!port.properties["containerport"].omit_zero);
        assert!(port.properties["hostport"].omit_zero);
        assert!(port.properties["hostip"].omit_zero);
    }

    #[test]
    fn no_two_properties_of_a_definition_normalize_alike() {
        for (name, def) in &schemas().definitions {
            let props = def
                .schema
                .get("properties")
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            assert_eq!(def.properties.len(), props, "collision in {name}");
        }
    }
}
