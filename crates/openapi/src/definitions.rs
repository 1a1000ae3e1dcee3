//! The schema definitions every OpenAPI document is cut from.
//!
//! Schemas come from the `k8s-openapi` types' own `schemars` implementations (never from a copy
//! of upstream's `swagger.json`), generated once per document build for every served resource
//! and the meta types the paths name. On top of what `k8s-openapi` emits this module adds what
//! clients look for and the Rust types cannot say:
//!
//! * `x-kubernetes-group-version-kind` on every served kind and its `…List` (kubectl finds a
//!   kind's schema by it: `explain`, client-side validation, the apply patcher);
//! * a `…List` definition per resource (`k8s-openapi` models lists as one generic type);
//! * `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` on the properties the
//!   strategic-merge-patch table names (kubectl's three-way patch reads them);
//! * `metadata` dropped from `required`: the Rust types make it mandatory, the API does not.
//!
//! Definitions are kept in Swagger 2.0 form (`$ref: "#/definitions/<name>"`, `$ref` with a
//! `description` beside it); the v3 builder rewrites them.

use api::resources::{RESOURCES, ResourceInfo};
use api::{ApiType, TypeVisitor, visit_type};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use patch::PatchMeta;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Where v2 references point.
pub(crate) const REF_PREFIX: &str = "#/definitions/";
pub(crate) const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";
pub(crate) const PATCH_STRATEGY_EXTENSION: &str = "x-kubernetes-patch-strategy";
pub(crate) const PATCH_MERGE_KEY_EXTENSION: &str = "x-kubernetes-patch-merge-key";

/// Names of the meta definitions the paths refer to (a unit test checks each is generated).
pub(crate) mod names {
    pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
    pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
    pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
    pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
    pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
    pub const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
    pub const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
    pub const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
    pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
    pub const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";
}

/// The schema definition names of one served resource.
#[derive(Clone, Debug)]
pub(crate) struct ResourceSchemas {
    pub info: &'static ResourceInfo,
    /// e.g. `io.k8s.api.core.v1.Pod`.
    pub definition: String,
    /// e.g. `io.k8s.api.core.v1.PodList`.
    pub list_definition: String,
}

/// Every definition the documents may use, plus the per-resource names.
pub(crate) struct Catalog {
    pub definitions: Map<String, Value>,
    pub resources: Vec<ResourceSchemas>,
}

/// Builds the catalog; `patch_meta` answers for a (definition, JSON field) pair.
pub(crate) fn build(patch_meta: &dyn Fn(&str, &str) -> Option<PatchMeta>) -> Catalog {
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            // Plain `$ref`s into `#/definitions/`, exactly as k8s-openapi wrote the schemas: the
            // draft-07 transforms would strip the `description` next to each `$ref`.
            s.meta_schema = None;
            s.transforms.clear();
            s.definitions_path = "/definitions".into();
        })
        .into_generator();

    let resources: Vec<ResourceSchemas> = RESOURCES
        .iter()
        .map(|info| {
            let definition = visit_type(info, Register(&mut generator));
            let list_definition = format!("{definition}List");
            ResourceSchemas {
                info,
                definition,
                list_definition,
            }
        })
        .collect();
    register_meta_types(&mut generator);

    let mut definitions = generator.take_definitions(false);
    for r in &resources {
        let list = list_schema(&definitions, r);
        definitions.insert(r.list_definition.clone(), list);
    }
    add_group_version_kinds(&mut definitions, &resources);
    for schema in definitions.values_mut() {
        drop_required_metadata(schema);
    }
    add_patch_extensions(&mut definitions, patch_meta);
    Catalog {
        definitions,
        resources,
    }
}

/// Registers a resource type's schema (and everything it references); returns its name.
struct Register<'a>(&'a mut SchemaGenerator);

impl TypeVisitor for Register<'_> {
    type Output = String;
    fn visit<T: ApiType>(self, _info: &'static ResourceInfo) -> String {
        self.0.subschema_for::<T>();
        T::schema_name().into_owned()
    }
}

fn register_meta_types(generator: &mut SchemaGenerator) {
    use k8s_openapi::api::autoscaling::v1::Scale;
    use k8s_openapi::apimachinery::pkg::version::Info;
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
        generator.subschema_for::<T>();
    }
    add::<meta::ListMeta>(generator);
    add::<meta::Status>(generator);
    add::<meta::DeleteOptions>(generator);
    // The event's schema does not depend on the watched type.
    add::<meta::WatchEvent<k8s_openapi::api::core::v1::Pod>>(generator);
    add::<meta::Patch>(generator);
    add::<meta::APIResourceList>(generator);
    add::<meta::APIGroup>(generator);
    add::<meta::APIGroupList>(generator);
    add::<meta::APIVersions>(generator);
    add::<Scale>(generator);
    add::<Info>(generator);
}

pub(crate) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

/// `PodList`: the shape of every list, `items` referring to the resource's definition.
fn list_schema(definitions: &Map<String, Value>, r: &ResourceSchemas) -> Value {
    // `apiVersion` and `kind` read the same on a list as on its items.
    let item_property = |name: &str| {
        definitions
            .get(&r.definition)
            .and_then(|d| d.pointer(&format!("/properties/{name}")))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    let mut metadata = reference(names::LIST_META);
    metadata["description"] = json!(
        "Standard list metadata. More info: \
         https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
    );
    json!({
        "description": format!("{}List is a list of {} objects.", r.info.kind, r.info.kind),
        "type": "object",
        "properties": {
            "apiVersion": item_property("apiVersion"),
            "items": {
                "description": format!("List of {}.", r.info.plural),
                "type": "array",
                "items": reference(&r.definition),
            },
            "kind": item_property("kind"),
            "metadata": metadata,
        },
        "required": ["items"],
    })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn add_group_version_kinds(definitions: &mut Map<String, Value>, resources: &[ResourceSchemas]) {
    let mut set = |name: &str, gvks: Vec<Value>| {
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            schema.insert(GVK_EXTENSION.to_string(), Value::Array(gvks));
        }
    };
    for r in resources {
        let (group, version, kind) = (r.info.group, r.info.version, r.info.kind);
        set(&r.definition, vec![gvk(group, version, kind)]);
        set(
            &r.list_definition,
            vec![gvk(group, version, &r.info.list_kind())],
        );
    }
    set(names::SCALE, vec![gvk("autoscaling", "v1", "Scale")]);
    set(names::STATUS, vec![gvk("", "v1", "Status")]);
    // Every group version accepts DeleteOptions and streams WatchEvents under its own apiVersion.
    let mut group_versions: Vec<(&str, &str)> = vec![("", "v1")];
    for r in resources {
        if !group_versions.contains(&r.info.group_version()) {
            group_versions.push(r.info.group_version());
        }
    }
    for (name, kind) in [
        (names::DELETE_OPTIONS, "DeleteOptions"),
        (names::WATCH_EVENT, "WatchEvent"),
    ] {
        set(
            name,
            group_versions
                .iter()
                .map(|(g, v)| gvk(g, v, kind))
                .collect(),
        );
    }
}

/// `k8s-openapi` lists `metadata` as required because its Rust field is not optional; the API
/// accepts objects without it (the server fills it or rejects by name), so do not tell clients
/// otherwise — kubectl's client-side validation would reject a manifest upstream accepts.
fn drop_required_metadata(schema: &mut Value) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|f| f != "metadata");
    if required.is_empty()
        && let Value::Object(map) = schema
    {
        map.remove("required");
    }
}

fn add_patch_extensions(
    definitions: &mut Map<String, Value>,
    patch_meta: &dyn Fn(&str, &str) -> Option<PatchMeta>,
) {
    for (name, schema) in definitions.iter_mut() {
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let (Some(meta), Value::Object(property)) = (patch_meta(name, field), property) else {
                continue;
            };
            property.insert(PATCH_STRATEGY_EXTENSION.into(), json!(meta.strategy));
            if let Some(key) = meta.merge_key {
                property.insert(PATCH_MERGE_KEY_EXTENSION.into(), json!(key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_patch(_: &str, _: &str) -> Option<PatchMeta> {
        None
    }

    #[test]
    fn meta_names_are_generated() {
        let catalog = build(&no_patch);
        for name in [
            names::STATUS,
            names::DELETE_OPTIONS,
            names::WATCH_EVENT,
            names::PATCH,
            names::LIST_META,
            names::API_RESOURCE_LIST,
            names::API_GROUP,
            names::API_GROUP_LIST,
            names::API_VERSIONS,
            names::SCALE,
            names::VERSION_INFO,
        ] {
            assert!(catalog.definitions.contains_key(name), "{name} missing");
        }
        // schemars suffixes a second type that claims a taken name with `2`; none may.
        for name in catalog.definitions.keys() {
            assert!(name.starts_with("io.k8s."), "{name}");
            let unsuffixed = name.strip_suffix('2').unwrap_or_default();
            assert!(!catalog.definitions.contains_key(unsuffixed), "{name}");
        }
    }

    #[test]
    fn resources_and_lists_carry_their_kind() {
        let catalog = build(&no_patch);
        let pod = &catalog.definitions["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod[GVK_EXTENSION],
            json!([{ "group": "", "kind": "Pod", "version": "v1" }])
        );
        let list = &catalog.definitions["io.k8s.api.apps.v1.DeploymentList"];
        assert_eq!(
            list[GVK_EXTENSION],
            json!([{ "group": "apps", "kind": "DeploymentList", "version": "v1" }])
        );
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.Deployment"
        );
        assert_eq!(list["required"], json!(["items"]));
        // Every served group version (core/v1 among them) accepts DeleteOptions.
        let delete = catalog.definitions[names::DELETE_OPTIONS][GVK_EXTENSION]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let versions: usize = api::resources::groups().iter().map(|(_, v)| v.len()).sum();
        assert_eq!(delete.len(), versions);
        assert!(delete.contains(&gvk("autoscaling", "v1", "DeleteOptions")));
        assert!(delete.contains(&gvk("", "v1", "DeleteOptions")));
    }

    #[test]
    fn metadata_is_not_required() {
        let catalog = build(&no_patch);
        assert!(
            catalog.definitions["io.k8s.api.core.v1.Pod"]
                .get("required")
                .is_none()
        );
        for (name, schema) in &catalog.definitions {
            if let Some(required) = schema.get("required") {
                assert!(
                    !required
                        .as_array()
                        .is_some_and(|r| r.contains(&json!("metadata"))),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn patch_extensions_land_on_properties() {
        let lookup = |definition: &str, field: &str| {
            (definition == "io.k8s.api.core.v1.PodSpec" && field == "containers").then_some(
                PatchMeta {
                    strategy: "merge",
                    merge_key: Some("name"),
                },
            )
        };
        let catalog = build(&lookup);
        let containers =
            &catalog.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers[PATCH_STRATEGY_EXTENSION], "merge");
        assert_eq!(containers[PATCH_MERGE_KEY_EXTENSION], "name");
        let volumes = &catalog.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert!(volumes.get(PATCH_STRATEGY_EXTENSION).is_none());
    }
}
