//! The API's paths and operations, as one neutral model both document builders render.
//!
//! Paths follow the resource table: for each resource its collection (list/watch, create,
//! deletecollection), its objects (read, replace, patch, delete), its subresources (`status`,
//! `scale`, and `finalize` for namespaces), and for namespaced kinds the all-namespaces list.
//! Operation ids, tags and the `x-kubernetes-action` / `x-kubernetes-group-version-kind`
//! extensions are named the way upstream names them, because clients key on them: kubectl
//! finds a kind's operations by the GVK extension on PATCH (field validation support, apply's
//! patch type) and `explain` reads it from the resource's list and object paths.
//!
//! The deprecated `/watch/` paths are not described: keelson serves watches as `?watch=true`
//! on the list paths only.

use api::resources::ResourceInfo;

use crate::definitions::{ResourceSchemas, names};
use crate::params::{self, Param};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// Media types every object-returning operation can produce.
pub(crate) const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// A list path also streams watch events.
pub(crate) const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
/// Discovery documents are JSON, YAML or protobuf too.
pub(crate) const PRODUCES_DISCOVERY: &[&str] = PRODUCES;
/// `/version` is JSON only.
pub(crate) const PRODUCES_JSON: &[&str] = &["application/json"];
/// The body types PATCH accepts, all described by the opaque `Patch` schema.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Body {
    /// Definition name of the body's schema.
    pub schema: String,
    /// Accepted media types; `None` means any (`*/*`).
    pub media_types: Option<&'static [&'static str]>,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub code: u16,
    pub description: &'static str,
    /// Definition name of the response body; `None` for a body-less response (401).
    pub schema: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Operation {
    pub method: Method,
    pub id: String,
    pub description: String,
    pub tag: String,
    /// `x-kubernetes-action`: get, list, post, put, patch, delete, deletecollection.
    pub action: Option<&'static str>,
    /// `x-kubernetes-group-version-kind`: the kind the operation reads or writes.
    pub gvk: Option<Gvk>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    pub produces: &'static [&'static str],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathItem {
    pub path: String,
    /// Parameters shared by every operation on the path.
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// A v3 document's key and URL prefix: `api/v1`, `apis/apps/v1`.
pub(crate) fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `Apps` / `RbacAuthorization` / `Core` word upstream puts in operation ids.
fn group_word(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let word = group_word(group);
    let mut chars = word.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

fn ok(schema: &str) -> Response {
    response(200, "OK", schema)
}

fn response(code: u16, description: &'static str, schema: &str) -> Response {
    Response {
        code,
        description,
        schema: Some(schema.to_string()),
    }
}

fn unauthorized() -> Response {
    Response {
        code: 401,
        description: "Unauthorized",
        schema: None,
    }
}

fn object_body(schema: &str) -> Option<Body> {
    Some(Body {
        schema: schema.to_string(),
        media_types: None,
        required: true,
    })
}

fn patch_body() -> Option<Body> {
    Some(Body {
        schema: names::PATCH.to_string(),
        media_types: Some(PATCH_TYPES),
        required: true,
    })
}

fn delete_body() -> Option<Body> {
    Some(Body {
        schema: names::DELETE_OPTIONS.to_string(),
        media_types: None,
        required: false,
    })
}

/// Builds the operations of one resource; holds what every id and description repeats.
struct ResourceOps<'a> {
    info: &'static ResourceInfo,
    schemas: &'a ResourceSchemas,
    /// `CoreV1`
    prefix: String,
    /// `Namespaced` or empty.
    scope: &'static str,
    tag: String,
}

impl ResourceOps<'_> {
    fn gvk(&self) -> Option<Gvk> {
        Some(Gvk {
            group: self.info.group,
            version: self.info.version,
            kind: self.info.kind,
        })
    }

    /// An operation on the resource's own kind with no parameters, body or responses yet;
    /// callers fill those in with struct update syntax.
    fn op(
        &self,
        method: Method,
        verb: &str,
        suffix: &str,
        description: String,
        action: &'static str,
    ) -> Operation {
        Operation {
            method,
            id: format!("{verb}{}{}", self.prefix, suffix),
            description,
            tag: self.tag.clone(),
            action: Some(action),
            gvk: self.gvk(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: PRODUCES,
        }
    }

    fn collection(&self) -> Vec<Operation> {
        let (kind, object, list) = (
            self.info.kind,
            &self.schemas.definition,
            &self.schemas.list_definition,
        );
        let named = format!("{}{kind}", self.scope);
        let list_description = format!("list or watch objects of kind {kind}");
        let mut ops = vec![
            Operation {
                params: params::list(),
                responses: vec![ok(list)],
                produces: PRODUCES_LIST,
                ..self.op(Method::Get, "list", &named, list_description, "list")
            },
            Operation {
                params: params::write(),
                body: object_body(object),
                responses: vec![
                    ok(object),
                    response(201, "Created", object),
                    response(202, "Accepted", object),
                ],
                ..self.op(
                    Method::Post,
                    "create",
                    &named,
                    format!("create a {kind}"),
                    "post",
                )
            },
        ];
        // Namespaces are deleted one at a time (upstream serves no deletecollection for them).
        if self.info.plural != "namespaces" {
            let description = format!("delete collection of {kind}");
            let suffix = format!("Collection{named}");
            ops.push(Operation {
                params: params::delete_collection(),
                body: delete_body(),
                responses: vec![ok(names::STATUS)],
                ..self.op(
                    Method::Delete,
                    "delete",
                    &suffix,
                    description,
                    "deletecollection",
                )
            });
        }
        ops
    }

    fn object(&self) -> Vec<Operation> {
        let (kind, object) = (self.info.kind, &self.schemas.definition);
        let named = format!("{}{kind}", self.scope);
        vec![
            Operation {
                responses: vec![ok(object)],
                ..self.op(
                    Method::Get,
                    "read",
                    &named,
                    format!("read the specified {kind}"),
                    "get",
                )
            },
            Operation {
                params: params::write(),
                body: object_body(object),
                responses: vec![ok(object), response(201, "Created", object)],
                ..self.op(
                    Method::Put,
                    "replace",
                    &named,
                    format!("replace the specified {kind}"),
                    "put",
                )
            },
            Operation {
                params: params::delete(),
                body: delete_body(),
                responses: vec![ok(names::STATUS), response(202, "Accepted", names::STATUS)],
                ..self.op(
                    Method::Delete,
                    "delete",
                    &named,
                    format!("delete a {kind}"),
                    "delete",
                )
            },
            Operation {
                params: params::patch(),
                body: patch_body(),
                responses: vec![ok(object), response(201, "Created", object)],
                ..self.op(
                    Method::Patch,
                    "patch",
                    &named,
                    format!("partially update the specified {kind}"),
                    "patch",
                )
            },
        ]
    }

    /// `status` and `scale`: read, replace and patch a part of the object.
    fn subresource(&self, sub: &str) -> Vec<Operation> {
        let kind = self.info.kind;
        let (schema, gvk) = if sub == "scale" {
            let scale = Gvk {
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
            };
            (names::SCALE.to_string(), Some(scale))
        } else {
            (self.schemas.definition.clone(), self.gvk())
        };
        let named = format!("{}{kind}{}", self.scope, capitalize(sub));
        vec![
            Operation {
                gvk: gvk.clone(),
                responses: vec![ok(&schema)],
                ..self.op(
                    Method::Get,
                    "read",
                    &named,
                    format!("read {sub} of the specified {kind}"),
                    "get",
                )
            },
            Operation {
                gvk: gvk.clone(),
                params: params::write(),
                body: object_body(&schema),
                responses: vec![ok(&schema), response(201, "Created", &schema)],
                ..self.op(
                    Method::Put,
                    "replace",
                    &named,
                    format!("replace {sub} of the specified {kind}"),
                    "put",
                )
            },
            Operation {
                gvk,
                params: params::patch(),
                body: patch_body(),
                responses: vec![ok(&schema), response(201, "Created", &schema)],
                ..self.op(
                    Method::Patch,
                    "patch",
                    &named,
                    format!("partially update {sub} of the specified {kind}"),
                    "patch",
                )
            },
        ]
    }

    /// `PUT /api/v1/namespaces/{name}/finalize`.
    fn finalize(&self) -> Vec<Operation> {
        let (kind, object) = (self.info.kind, &self.schemas.definition);
        vec![Operation {
            params: params::write(),
            body: object_body(object),
            responses: vec![ok(object), response(201, "Created", object)],
            ..self.op(
                Method::Put,
                "replace",
                &format!("{kind}Finalize"),
                format!("replace finalize of the specified {kind}"),
                "put",
            )
        }]
    }

    fn all_namespaces_list(&self) -> Operation {
        let kind = self.info.kind;
        Operation {
            params: params::list(),
            responses: vec![ok(&self.schemas.list_definition)],
            produces: PRODUCES_LIST,
            ..self.op(
                Method::Get,
                "list",
                &format!("{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                "list",
            )
        }
    }
}

fn pretty() -> Param {
    params::PRETTY.param()
}

/// Every path of one group version, in path order.
pub(crate) fn group_version_paths(
    group: &str,
    version: &str,
    resources: &[ResourceSchemas],
) -> Vec<PathItem> {
    let base = format!("/{}", group_version_key(group, version));
    let prefix = format!("{}{}", group_word(group), capitalize(version));
    let tag = tag(group, version);
    let mut paths = vec![PathItem {
        path: format!("{base}/"),
        params: Vec::new(),
        operations: vec![Operation {
            method: Method::Get,
            id: format!("get{prefix}APIResources"),
            description: "get available resources".to_string(),
            tag: tag.clone(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![ok(names::API_RESOURCE_LIST), unauthorized()],
            produces: PRODUCES_DISCOVERY,
        }],
    }];
    for schemas in resources
        .iter()
        .filter(|r| r.info.group == group && r.info.version == version)
    {
        let info = schemas.info;
        let ops = ResourceOps {
            info,
            schemas,
            prefix: prefix.clone(),
            scope: if info.namespaced { "Namespaced" } else { "" },
            tag: tag.clone(),
        };
        let (collection, mut scope_params) = if info.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", info.plural),
                vec![params::namespace()],
            )
        } else {
            (format!("{base}/{}", info.plural), Vec::new())
        };
        scope_params.push(pretty());
        let mut object_params = vec![params::name(info.kind)];
        object_params.extend(scope_params.iter().cloned());

        paths.push(PathItem {
            path: collection.clone(),
            params: scope_params,
            operations: ops.collection(),
        });
        paths.push(PathItem {
            path: format!("{collection}/{{name}}"),
            params: object_params.clone(),
            operations: ops.object(),
        });
        for sub in info.subresources {
            let operations = match *sub {
                "status" | "scale" => ops.subresource(sub),
                "finalize" => ops.finalize(),
                _ => continue,
            };
            let mut params = object_params.clone();
            if *sub == "scale" {
                params[0] = params::name("Scale");
            }
            paths.push(PathItem {
                path: format!("{collection}/{{name}}/{sub}"),
                params,
                operations,
            });
        }
        if info.namespaced {
            paths.push(PathItem {
                path: format!("{base}/{}", info.plural),
                params: vec![pretty()],
                operations: vec![ops.all_namespaces_list()],
            });
        }
    }
    // Every operation may be refused to an unauthenticated caller.
    for op in paths.iter_mut().flat_map(|p| p.operations.iter_mut()) {
        if !op.responses.iter().any(|r| r.code == 401) {
            op.responses.push(unauthorized());
        }
    }
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    paths
}

fn discovery_path(path: &str, id: &str, description: &str, tag: &str, schema: &str) -> PathItem {
    PathItem {
        path: path.to_string(),
        params: Vec::new(),
        operations: vec![Operation {
            method: Method::Get,
            id: id.to_string(),
            description: description.to_string(),
            tag: tag.to_string(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![ok(schema), unauthorized()],
            produces: if schema == names::VERSION_INFO {
                PRODUCES_JSON
            } else {
                PRODUCES_DISCOVERY
            },
        }],
    }
}

/// The paths of a document that is not a group version: `api`, `apis`, `apis/<group>` and
/// `version`. `None` for any other key.
pub(crate) fn discovery_paths(key: &str) -> Option<Vec<PathItem>> {
    let item = match key {
        "api" => discovery_path(
            "/api/",
            "getCoreAPIVersions",
            "get available API versions",
            "core",
            names::API_VERSIONS,
        ),
        "apis" => discovery_path(
            "/apis/",
            "getAPIVersions",
            "get available API versions",
            "apis",
            names::API_GROUP_LIST,
        ),
        "version" => discovery_path(
            "/version/",
            "getCodeVersion",
            "get the version information for this server",
            "version",
            names::VERSION_INFO,
        ),
        _ => {
            let group = key.strip_prefix("apis/")?;
            if group.contains('/') || !api::resources::groups().iter().any(|(g, _)| *g == group) {
                return None;
            }
            let word = group_word(group);
            let mut tag = tag(group, "");
            tag.pop(); // no version: `apps`, `rbacAuthorization`
            discovery_path(
                &format!("/apis/{group}/"),
                &format!("get{word}APIGroup"),
                "get information of a group",
                &tag,
                names::API_GROUP,
            )
        }
    };
    Some(vec![item])
}

/// Keys of every document besides the group versions, in index order.
pub(crate) fn discovery_keys() -> Vec<String> {
    let mut keys = vec!["api".to_string(), "apis".to_string()];
    keys.extend(
        api::resources::groups()
            .into_iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, _)| format!("apis/{g}")),
    );
    keys.push("version".to_string());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags_read_like_upstream() {
        assert_eq!(group_word(""), "Core");
        assert_eq!(group_word("rbac.authorization.k8s.io"), "RbacAuthorization");
        assert_eq!(group_word("apps"), "Apps");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(tag("networking.k8s.io", "v1"), "networking_v1");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(group_version_key("", "v1"), "api/v1");
        assert_eq!(group_version_key("apps", "v1"), "apis/apps/v1");
    }

    #[test]
    fn discovery_keys_cover_every_group() {
        let keys = discovery_keys();
        assert_eq!(keys[0], "api");
        assert!(keys.contains(&"apis/apps".to_string()));
        assert!(!keys.contains(&"apis/".to_string()));
        assert!(discovery_paths("apis/apps").is_some());
        assert!(discovery_paths("apis/nope").is_none());
        assert!(discovery_paths("apis/apps/v1").is_none());
        let apps = discovery_paths("apis/rbac.authorization.k8s.io").unwrap_or_default();
        assert_eq!(apps[0].operations[0].id, "getRbacAuthorizationAPIGroup");
        assert_eq!(apps[0].operations[0].tag, "rbacAuthorization");
    }
}
