//! The request parameters the API paths take, described once and rendered by both document
//! builders.
//!
//! Each verb takes the same query parameters as upstream's generic REST handlers. kubectl reads
//! one of them: a `fieldValidation` query parameter on a kind's PATCH operation is how it learns
//! that the server validates fields itself (otherwise `--validate=strict` falls back to
//! validating against the v2 document on the client).

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
}

impl In {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
        }
    }
}

/// A parameter that is not the request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: In,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: String,
    pub required: bool,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> StaticParam {
    StaticParam {
        name,
        ty,
        description,
    }
}

/// A query parameter as a constant; [`StaticParam::param`] makes the rendered form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StaticParam {
    name: &'static str,
    ty: &'static str,
    description: &'static str,
}

impl StaticParam {
    pub(crate) fn param(self) -> Param {
        Param {
            name: self.name,
            location: In::Query,
            ty: self.ty,
            description: self.description.to_string(),
            required: false,
        }
    }
}

pub(crate) const PRETTY: StaticParam = query(
    "pretty",
    "string",
    "If 'true', the response is indented for humans to read.",
);
pub(crate) const DRY_RUN: StaticParam = query(
    "dryRun",
    "string",
    "When present, the request is processed in full but nothing is persisted. The only valid \
     value is 'All' (run every stage); any other value is rejected.",
);
pub(crate) const FIELD_MANAGER: StaticParam = query(
    "fieldManager",
    "string",
    "The name of the actor making this change, recorded in managedFields. At most 128 printable \
     characters. Required for apply patches (application/apply-patch+yaml), optional otherwise.",
);
pub(crate) const FIELD_VALIDATION: StaticParam = query(
    "fieldValidation",
    "string",
    "What the server does with unknown or duplicate fields in the request body: 'Ignore' drops \
     them silently, 'Warn' drops them and returns a warning header for each, 'Strict' rejects \
     the request. The default is 'Warn'.",
);
pub(crate) const FORCE: StaticParam = query(
    "force",
    "boolean",
    "Apply requests only: take ownership of fields other managers own instead of failing with a \
     conflict. Must be unset for other patch types.",
);
pub(crate) const LABEL_SELECTOR: StaticParam = query(
    "labelSelector",
    "string",
    "Only objects whose labels match this selector. Defaults to everything.",
);
pub(crate) const FIELD_SELECTOR: StaticParam = query(
    "fieldSelector",
    "string",
    "Only objects whose fields match this selector. Defaults to everything.",
);
pub(crate) const LIMIT: StaticParam = query(
    "limit",
    "integer",
    "The most items to return. When more remain, the list's metadata.continue holds a token \
     for the next page; the server may return fewer items than asked, even none, while more \
     remain, so clients must follow continue until it is empty.",
);
pub(crate) const CONTINUE: StaticParam = query(
    "continue",
    "string",
    "The token from a previous page's metadata.continue, to fetch the next page of the same \
     list. The other parameters must match the first request. When the token has expired \
     (after compaction) the server answers 410 Gone and the list must be restarted.",
);
pub(crate) const RESOURCE_VERSION: StaticParam = query(
    "resourceVersion",
    "string",
    "Which state to read. Unset: the latest, read consistently. '0': any state, served from \
     cache. Any other value: a state at least that recent (or exactly it, with \
     resourceVersionMatch=Exact). For watches, the revision to start from.",
);
pub(crate) const RESOURCE_VERSION_MATCH: StaticParam = query(
    "resourceVersionMatch",
    "string",
    "How resourceVersion applies to a list: 'NotOlderThan' or 'Exact'. Only valid with \
     resourceVersion set.",
);
pub(crate) const TIMEOUT_SECONDS: StaticParam = query(
    "timeoutSeconds",
    "integer",
    "How long a list or watch call may last, in seconds, whether or not there is activity.",
);
pub(crate) const WATCH: StaticParam = query(
    "watch",
    "boolean",
    "Stream added, modified and deleted events for the matching objects instead of listing \
     them. Use resourceVersion to choose where the stream starts.",
);
pub(crate) const ALLOW_WATCH_BOOKMARKS: StaticParam = query(
    "allowWatchBookmarks",
    "boolean",
    "Ask for BOOKMARK events, which carry only a newer resourceVersion. The server decides when \
     to send them; clients must not assume any interval. Ignored for non-watch requests.",
);
pub(crate) const SEND_INITIAL_EVENTS: StaticParam = query(
    "sendInitialEvents",
    "boolean",
    "With watch=true: first send an ADDED event for every existing object, then a BOOKMARK \
     annotated 'k8s.io/initial-events-end', then the changes. Requires \
     resourceVersionMatch=NotOlderThan.",
);
pub(crate) const GRACE_PERIOD_SECONDS: StaticParam = query(
    "gracePeriodSeconds",
    "integer",
    "Seconds the object has to shut down before it is deleted; non-negative. 0 deletes at once. \
     Unset uses the kind's default.",
);
pub(crate) const PROPAGATION_POLICY: StaticParam = query(
    "propagationPolicy",
    "string",
    "What happens to the object's dependents: 'Orphan' leaves them, 'Background' deletes them \
     after the object, 'Foreground' deletes them before the object. Cannot be combined with \
     orphanDependents.",
);
pub(crate) const ORPHAN_DEPENDENTS: StaticParam = query(
    "orphanDependents",
    "boolean",
    "Deprecated: use propagationPolicy. When true, dependents are orphaned (the 'orphan' \
     finalizer is added); when false, they are not.",
);

/// A path parameter; both `name` and `namespace` are always required.
pub(crate) fn path(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description,
        required: true,
    }
}

pub(crate) fn namespace() -> Param {
    path(
        "namespace",
        "The namespace the object lives in (object name and auth scope).".to_string(),
    )
}

pub(crate) fn name(kind: &str) -> Param {
    path("name", format!("name of the {kind}"))
}

fn all(list: &[StaticParam]) -> Vec<Param> {
    list.iter().map(|p| p.param()).collect()
}

/// GET on a collection (list, or watch with `watch=true`).
pub(crate) fn list() -> Vec<Param> {
    all(&[
        ALLOW_WATCH_BOOKMARKS,
        CONTINUE,
        FIELD_SELECTOR,
        LABEL_SELECTOR,
        LIMIT,
        RESOURCE_VERSION,
        RESOURCE_VERSION_MATCH,
        SEND_INITIAL_EVENTS,
        TIMEOUT_SECONDS,
        WATCH,
    ])
}

/// POST, and PUT on an object or subresource.
pub(crate) fn write() -> Vec<Param> {
    all(&[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION])
}

pub(crate) fn patch() -> Vec<Param> {
    all(&[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE])
}

pub(crate) fn delete() -> Vec<Param> {
    all(&[
        DRY_RUN,
        GRACE_PERIOD_SECONDS,
        ORPHAN_DEPENDENTS,
        PROPAGATION_POLICY,
    ])
}

pub(crate) fn delete_collection() -> Vec<Param> {
    all(&[
        CONTINUE,
        DRY_RUN,
        FIELD_SELECTOR,
        GRACE_PERIOD_SECONDS,
        LABEL_SELECTOR,
        LIMIT,
        ORPHAN_DEPENDENTS,
        PROPAGATION_POLICY,
        RESOURCE_VERSION,
        RESOURCE_VERSION_MATCH,
        SEND_INITIAL_EVENTS,
        TIMEOUT_SECONDS,
    ])
}
