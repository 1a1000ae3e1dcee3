//! What a request asks for: the path parsed the way upstream's `RequestInfoFactory` does, and the
//! query parameters of the list/watch/write/delete verbs.

use std::collections::HashMap;

use api::ApiError;

/// The verb of a resource request, derived from method, path and `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (as opposed to discovery, health or OpenAPI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    /// Empty for cluster-scoped resources and for all-namespace lists/watches.
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
    pub verb: Verb,
}

/// Everything the router distinguishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/api`: the legacy group's versions.
    LegacyVersions,
    /// `/apis`: all named groups.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`: the resource list.
    Resources {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
    Version,
    Health(String),
    /// Anything under `/openapi/`; the `openapi` crate answers it.
    OpenApi,
    /// `/keelson/v1/history`: the retained revisions of one object.
    History,
    NotFound,
}

/// Parses a request path (without query) for `method` and the `watch` query flag.
pub fn route(method: &http::Method, path: &str, watch_param: bool) -> Route {
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    match parts.as_slice() {
        ["version"] => return Route::Version,
        [h @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            let mut check = (*h).to_string();
            for r in rest {
                check.push('/');
                check.push_str(r);
            }
            return Route::Health(check);
        }
        ["openapi", ..] => return Route::OpenApi,
        ["keelson", "v1", "history"] => return Route::History,
        ["api"] => return Route::LegacyVersions,
        ["apis"] => return Route::Groups,
        ["apis", g] => return Route::Group((*g).to_string()),
        ["api", v] => {
            return Route::Resources {
                group: String::new(),
                version: (*v).to_string(),
            };
        }
        ["apis", g, v] => {
            return Route::Resources {
                group: (*g).to_string(),
                version: (*v).to_string(),
            };
        }
        _ => {}
    }
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    // The deprecated `/watch/` prefix marks a watch, like `?watch=true`.
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut req = ResourceRequest {
        group: group.to_string(),
        version: version.to_string(),
        namespace: String::new(),
        resource: String::new(),
        name: String::new(),
        subresource: String::new(),
        verb: Verb::Get,
    };
    match rest {
        // Namespace subresources are addressed like namespaced resources, but name the
        // namespace itself.
        ["namespaces", name, sub @ ("status" | "finalize")] => {
            req.resource = "namespaces".into();
            req.name = (*name).to_string();
            req.subresource = (*sub).to_string();
        }
        ["namespaces", ns, resource, tail @ ..] => {
            req.namespace = (*ns).to_string();
            req.resource = (*resource).to_string();
            match tail {
                [] => {}
                [name] => req.name = (*name).to_string(),
                [name, sub] => {
                    req.name = (*name).to_string();
                    req.subresource = (*sub).to_string();
                }
                _ => return Route::NotFound,
            }
        }
        [resource] => req.resource = (*resource).to_string(),
        [resource, name] => {
            req.resource = (*resource).to_string();
            req.name = (*name).to_string();
        }
        [resource, name, sub] => {
            req.resource = (*resource).to_string();
            req.name = (*name).to_string();
            req.subresource = (*sub).to_string();
        }
        _ => return Route::NotFound,
    }
    let has_name = !req.name.is_empty();
    req.verb = match *method {
        http::Method::GET | http::Method::HEAD => {
            if watch_prefix || watch_param {
                Verb::Watch
            } else if has_name {
                Verb::Get
            } else {
                Verb::List
            }
        }
        http::Method::POST => Verb::Create,
        http::Method::PUT => Verb::Update,
        http::Method::PATCH => Verb::Patch,
        http::Method::DELETE => {
            if has_name {
                Verb::Delete
            } else {
                Verb::DeleteCollection
            }
        }
        _ => return Route::NotFound,
    };
    Route::Resource(req)
}

/// Decoded query string. Repeated keys keep the first value, as Go's `url.Values.Get` does.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter: `true`/`1` are true; absent is false; anything else is a 400.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {key}: {v:?}: must be true or false"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?}: must be an integer"
                ))
            }),
        }
    }
}

/// How a `resourceVersion` on a list is to be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

/// The parameters of list and watch.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: i64,
    pub continue_token: String,
    pub resource_version: String,
    pub resource_version_match: Option<RvMatch>,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<i64>,
}

impl ListOptions {
    pub fn from_query(q: &Query) -> Result<ListOptions, ApiError> {
        let resource_version_match = match q.get("resourceVersionMatch") {
            None | Some("") => None,
            Some("NotOlderThan") => Some(RvMatch::NotOlderThan),
            Some("Exact") => Some(RvMatch::Exact),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid resourceVersionMatch {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
        };
        let send_initial_events = match q.get("sendInitialEvents") {
            None => None,
            Some(_) => Some(q.flag("sendInitialEvents")?),
        };
        let limit = q.int("limit")?.unwrap_or(0);
        let opts = ListOptions {
            label_selector: q.get("labelSelector").unwrap_or("").to_string(),
            field_selector: q.get("fieldSelector").unwrap_or("").to_string(),
            limit: limit.max(0),
            continue_token: q.get("continue").unwrap_or("").to_string(),
            resource_version: q.get("resourceVersion").unwrap_or("").to_string(),
            resource_version_match,
            allow_watch_bookmarks: q.flag("allowWatchBookmarks")?,
            send_initial_events,
            timeout_seconds: q.int("timeoutSeconds")?,
        };
        // Watch-list clients send `resourceVersion=` with `resourceVersionMatch=NotOlderThan`
        // and `sendInitialEvents=true`; otherwise a match needs a version.
        if opts.resource_version_match.is_some()
            && opts.resource_version.is_empty()
            && opts.send_initial_events.is_none()
        {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if opts.resource_version_match.is_some() && !opts.continue_token.is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if !opts.continue_token.is_empty() && !matches!(opts.resource_version.as_str(), "" | "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        Ok(opts)
    }

    /// The `resourceVersion` as a revision, if one was given and is not "0".
    pub fn revision(&self) -> Result<Option<i64>, ApiError> {
        parse_resource_version(&self.resource_version)
    }
}

/// Parses a `resourceVersion` parameter: "" and "0" are `None`.
pub fn parse_resource_version(rv: &str) -> Result<Option<i64>, ApiError> {
    match rv {
        "" | "0" => Ok(None),
        v => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(ApiError::bad_request(format!(
                "invalid resource version: {v}"
            ))),
        },
    }
}

/// `fieldValidation`: what to do with unknown or duplicate fields in a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// The parameters of create, update and patch.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: String,
    /// Who is writing (recorded with the stored revision; see `record`).
    pub user: String,
}

impl WriteOptions {
    pub fn from_query(q: &Query) -> Result<WriteOptions, ApiError> {
        Ok(WriteOptions {
            dry_run: parse_dry_run(q)?,
            field_validation: match q.get("fieldValidation") {
                None | Some("" | "Warn") => FieldValidation::Warn,
                Some("Ignore") => FieldValidation::Ignore,
                Some("Strict") => FieldValidation::Strict,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
                    )));
                }
            },
            field_manager: q.get("fieldManager").unwrap_or("").to_string(),
            user: String::new(),
        })
    }
}

/// `dryRun=All` (the only value upstream accepts).
pub fn parse_dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun value {other:?}: supported values: \"All\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn res(method: Method, path: &str) -> ResourceRequest {
        match route(&method, path, false) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods/web/log");
        assert_eq!(
            (
                r.namespace.as_str(),
                r.resource.as_str(),
                r.name.as_str(),
                r.subresource.as_str()
            ),
            ("default", "pods", "web", "log")
        );
        assert_eq!(r.verb, Verb::Get);
        let r = res(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(
            (r.group.as_str(), r.resource.as_str(), r.verb),
            ("apps", "deployments", Verb::List)
        );
        let r = res(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_str(), r.namespace.as_str()),
            ("namespaces", "kube-system", "")
        );
        let r = res(Method::PUT, "/api/v1/namespaces/x/finalize");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_str(),
                r.subresource.as_str(),
                r.verb
            ),
            ("namespaces", "x", "finalize", Verb::Update)
        );
        let r = res(Method::GET, "/api/v1/watch/namespaces/default/pods");
        assert_eq!(r.verb, Verb::Watch);
        let r = res(Method::DELETE, "/api/v1/namespaces/default/configmaps");
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert_eq!(
            route(
                &Method::GET,
                "/apis/apps/v1/namespaces/a/deployments/b/c/d",
                false
            ),
            Route::NotFound
        );
        assert_eq!(route(&Method::GET, "/apis", false), Route::Groups);
        assert_eq!(
            route(&Method::GET, "/readyz/ping", false),
            Route::Health("readyz/ping".into())
        );
    }

    #[test]
    fn list_options() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb&limit=5&resourceVersion=10&resourceVersionMatch=NotOlderThan",
        ));
        let o = ListOptions::from_query(&q).unwrap();
        assert_eq!(o.label_selector, "app=web");
        assert_eq!(o.limit, 5);
        assert_eq!(o.revision().unwrap(), Some(10));
        let q = Query::parse(Some("resourceVersionMatch=Exact"));
        assert_eq!(ListOptions::from_query(&q).unwrap_err().code, 400);
        assert_eq!(parse_resource_version("abc").unwrap_err().code, 400);
        assert!(Query::parse(Some("watch=maybe")).flag("watch").is_err());
    }
}
