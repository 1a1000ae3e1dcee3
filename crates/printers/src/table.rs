//! Assembling a `meta.k8s.io/v1` Table: column definitions, one row per object, the row's
//! `object` in the form `includeObject` asks for, and the list metadata.
//!
//! Rows are printed the way the upstream apiserver prints them: always with the wide cells
//! (kubectl hides columns of priority 1 itself unless `-o wide`). A kind without a printer gets
//! the generic table of `Name` and `Created At`, as upstream's default table convertor gives.
//!
//! [`Table`] borrows the objects it was built from and writes each row's `object` straight from
//! them when serialized, so a listing costs the cells and nothing more: no object or metadata is
//! copied. [`table`] and friends return the same Table as a `serde_json::Value` for convenience.

use std::sync::LazyLock;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::columns::{self, Column, doc};
use crate::duration::human_duration;
use crate::kinds;
use crate::view::Meta;

/// The `includeObject` query parameter: what each row carries in `object`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object (`"object": null`).
    None,
    /// A `PartialObjectMetadata` with the object's metadata: kubectl reads labels (`-L`,
    /// `--show-labels`) and the namespace (`-A`) from it.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; an empty value means the default. `None` for anything
    /// else, which the server answers with 400 `unrecognized includeObject value: "x"`.
    pub fn parse(value: &str) -> Option<IncludeObject> {
        match value {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Why an object could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot print {kind} {name:?}: it does not read as a {kind}: {source}")]
    Decode {
        kind: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// What a row printer needs besides the object.
pub(crate) struct Ctx {
    pub(crate) now: Timestamp,
}

impl Ctx {
    /// `translateTimestampSince`: how long ago `t` was, `<unknown>` without a time.
    pub(crate) fn since(&self, t: Option<&Time>) -> String {
        match t {
            Some(t) => self.since_ts(t.0),
            None => "<unknown>".to_string(),
        }
    }

    pub(crate) fn since_micro(&self, t: Option<&MicroTime>) -> String {
        match t {
            Some(t) => self.since_ts(t.0),
            None => "<unknown>".to_string(),
        }
    }

    pub(crate) fn since_ts(&self, t: Timestamp) -> String {
        human_duration(self.now.duration_since(t))
    }

    /// The `Age` cell.
    pub(crate) fn age(&self, meta: &Meta<'_>) -> Value {
        Value::String(self.since(meta.creation_timestamp.as_ref()))
    }
}

/// The cells of one row, plus row conditions (only pods use them).
pub(crate) struct Row {
    pub(crate) cells: Vec<Value>,
    pub(crate) conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

pub(crate) type RowFn = fn(&Value, &Ctx) -> Result<Row, TableError>;

/// A kind's printer: its columns (built once) and its row function.
pub(crate) struct Printer {
    pub(crate) columns: &'static LazyLock<Value>,
    pub(crate) row: RowFn,
}

/// Reads the view `T` of `obj` (`kind` names it in the error).
pub(crate) fn decode<'a, T: Deserialize<'a>>(obj: &'a Value, kind: &str) -> Result<T, TableError> {
    T::deserialize(obj).map_err(|source| TableError::Decode {
        kind: kind.to_string(),
        name: object_name(obj).to_string(),
        source,
    })
}

fn object_name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A string cell.
pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// An integer cell.
pub(crate) fn int(v: impl Into<i64>) -> Value {
    Value::from(v.into())
}

/// A count cell.
pub(crate) fn count(n: usize) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The object's name cell.
pub(crate) fn name(meta: &Meta<'_>) -> Value {
    s(meta.name())
}

static DEFAULT_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::new("Created At", "date", doc::<ObjectMeta>("creationTimestamp")),
    ])
});

/// Upstream's default table convertor: the name and the creation time in RFC 3339 UTC.
static DEFAULT: Printer = Printer {
    columns: &DEFAULT_COLUMNS,
    row: default_row,
};

fn default_row(obj: &Value, _ctx: &Ctx) -> Result<Row, TableError> {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok());
    // Go prints the zero time for an object without one.
    let created = match created {
        Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    Ok(vec![s(object_name(obj)), s(created)].into())
}

fn printer(group: &str, version: &str, kind: &str) -> &'static Printer {
    kinds::printer(group, version, kind).unwrap_or(&DEFAULT)
}

/// The Table for some objects of one kind, borrowing them; serialize it to answer the request.
pub struct Table<'a> {
    columns: &'static Value,
    metadata: Map<String, Value>,
    rows: Vec<TableRow<'a>>,
    include: IncludeObject,
    api_version: String,
    kind: String,
}

struct TableRow<'a> {
    cells: Vec<Value>,
    conditions: Option<Value>,
    object: &'a Value,
}

impl<'a> Table<'a> {
    /// Builds the Table for `objects` of (group, version, kind), given as served JSON.
    ///
    /// `list_meta` is the list's `metadata` (`resourceVersion`, `continue`,
    /// `remainingItemCount`). An object that does not read as its kind gets a row of its name
    /// and `<unknown>` cells rather than failing the listing; [`Table::try_new`] fails instead.
    pub fn new(
        group: &str,
        version: &str,
        kind: &str,
        objects: impl IntoIterator<Item = &'a Value>,
        include: IncludeObject,
        now: Timestamp,
        list_meta: &Value,
    ) -> Table<'a> {
        let p = printer(group, version, kind);
        let ctx = Ctx { now };
        let width = p.columns.as_array().map_or(0, Vec::len);
        let rows = objects
            .into_iter()
            .map(|obj| {
                let row = (p.row)(obj, &ctx).unwrap_or_else(|_| unreadable_row(obj, width));
                TableRow {
                    cells: row.cells,
                    conditions: row.conditions,
                    object: obj,
                }
            })
            .collect();
        Table::assemble(p, rows, list_meta, include, group, version, kind)
    }

    /// Like [`Table::new`], but an object that does not read as its kind fails the Table.
    pub fn try_new(
        group: &str,
        version: &str,
        kind: &str,
        objects: impl IntoIterator<Item = &'a Value>,
        include: IncludeObject,
        now: Timestamp,
        list_meta: &Value,
    ) -> Result<Table<'a>, TableError> {
        let p = printer(group, version, kind);
        let ctx = Ctx { now };
        let rows = objects
            .into_iter()
            .map(|obj| {
                let row = (p.row)(obj, &ctx)?;
                Ok(TableRow {
                    cells: row.cells,
                    conditions: row.conditions,
                    object: obj,
                })
            })
            .collect::<Result<Vec<_>, TableError>>()?;
        Ok(Table::assemble(
            p, rows, list_meta, include, group, version, kind,
        ))
    }

    /// The Table of one object (`kubectl get pod x`): one row, and the object's
    /// resourceVersion as the Table's.
    pub fn for_object(
        group: &str,
        version: &str,
        kind: &str,
        object: &'a Value,
        include: IncludeObject,
        now: Timestamp,
    ) -> Table<'a> {
        let list_meta = match object.pointer("/metadata/resourceVersion") {
            Some(rv) => json!({ "resourceVersion": rv }),
            None => json!({}),
        };
        Table::new(
            group,
            version,
            kind,
            std::iter::once(object),
            include,
            now,
            &list_meta,
        )
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The Table as a JSON value (copies the row objects).
    pub fn to_value(&self) -> Value {
        // Serializing maps of JSON values into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn assemble(
        p: &'static Printer,
        rows: Vec<TableRow<'a>>,
        list_meta: &Value,
        include: IncludeObject,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Table<'a> {
        // ListMeta fields are all omitempty upstream.
        let mut metadata = Map::new();
        for key in ["resourceVersion", "continue", "remainingItemCount"] {
            match list_meta.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) if v.is_empty() => {}
                Some(v) => {
                    metadata.insert(key.to_string(), v.clone());
                }
            }
        }
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Table {
            columns: p.columns,
            metadata,
            rows,
            include,
            api_version,
            kind: kind.to_string(),
        }
    }
}

fn unreadable_row(obj: &Value, width: usize) -> Row {
    let mut cells = vec![s(object_name(obj))];
    cells.resize(width.max(1), s("<unknown>"));
    cells.into()
}

impl Serialize for Table<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("kind", "Table")?;
        map.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("columnDefinitions", self.columns)?;
        let rows: Vec<RowOut<'_>> = self
            .rows
            .iter()
            .map(|row| RowOut { table: self, row })
            .collect();
        map.serialize_entry("rows", &rows)?;
        map.end()
    }
}

struct RowOut<'t> {
    table: &'t Table<'t>,
    row: &'t TableRow<'t>,
}

impl Serialize for RowOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("cells", &self.row.cells)?;
        if let Some(conditions) = &self.row.conditions {
            map.serialize_entry("conditions", conditions)?;
        }
        match self.table.include {
            IncludeObject::None => map.serialize_entry("object", &Value::Null)?,
            IncludeObject::Metadata => map.serialize_entry(
                "object",
                &PartialObjectMetadata {
                    metadata: self.row.object.get("metadata"),
                },
            )?,
            IncludeObject::Object => map.serialize_entry(
                "object",
                &WithTypeMeta {
                    object: self.row.object,
                    api_version: &self.table.api_version,
                    kind: &self.table.kind,
                },
            )?,
        }
        map.end()
    }
}

/// `meta.k8s.io/v1 PartialObjectMetadata` holding the object's metadata as stored.
struct PartialObjectMetadata<'a> {
    metadata: Option<&'a Value>,
}

impl Serialize for PartialObjectMetadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("kind", "PartialObjectMetadata")?;
        map.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
        match self.metadata {
            Some(m) => map.serialize_entry("metadata", m)?,
            None => map.serialize_entry("metadata", &Map::new())?,
        }
        map.end()
    }
}

/// The whole object, with `apiVersion` and `kind` added when the stored JSON lacks them (upstream
/// converts the object to the served version, which sets both).
struct WithTypeMeta<'a> {
    object: &'a Value,
    api_version: &'a str,
    kind: &'a str,
}

impl Serialize for WithTypeMeta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(fields) = self.object.as_object() else {
            return self.object.serialize(serializer);
        };
        let mut map = serializer.serialize_map(None)?;
        if !fields.contains_key("apiVersion") {
            map.serialize_entry("apiVersion", self.api_version)?;
        }
        if !fields.contains_key("kind") {
            map.serialize_entry("kind", self.kind)?;
        }
        for (k, v) in fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Builds the Table for `objects` of one kind, given as served JSON, as a JSON value.
///
/// `list_meta` is the list's `metadata` (`resourceVersion`, `continue`, `remainingItemCount`);
/// for a single object use [`object_table`]. An object that does not read as its kind gets a
/// row of its name and `<unknown>` cells rather than failing the listing; [`try_table`] fails
/// instead. [`Table::new`] builds the same without copying the objects.
pub fn table(
    group: &str,
    version: &str,
    kind: &str,
    objects: &[Value],
    include: IncludeObject,
    now: Timestamp,
    list_meta: Value,
) -> Value {
    Table::new(group, version, kind, objects, include, now, &list_meta).to_value()
}

/// Like [`table`], but an object that does not read as its kind fails the whole table.
pub fn try_table(
    group: &str,
    version: &str,
    kind: &str,
    objects: &[Value],
    include: IncludeObject,
    now: Timestamp,
    list_meta: Value,
) -> Result<Value, TableError> {
    Table::try_new(group, version, kind, objects, include, now, &list_meta).map(|t| t.to_value())
}

/// The Table of one object (`kubectl get pod x`): one row, and the object's resourceVersion.
pub fn object_table(
    group: &str,
    version: &str,
    kind: &str,
    object: &Value,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    Table::for_object(group, version, kind, object, include, now).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().expect("valid time")
    }

    fn role() -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": "reader",
                "namespace": "default",
                "labels": {"app": "web"},
                "resourceVersion": "42",
                "creationTimestamp": "2025-05-30T08:15:00Z",
            },
            "rules": [],
        })
    }

    #[test]
    fn default_table_for_kinds_without_a_printer() {
        let t = table(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            &[role()],
            IncludeObject::Metadata,
            now(),
            json!({"resourceVersion": "100", "continue": ""}),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "100"}));
        let cols = t["columnDefinitions"].as_array().expect("columns");
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[0]["name"], "Name");
        assert_eq!(cols[1]["name"], "Created At");
        assert_eq!(cols[1]["type"], "date");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["reader", "2025-05-30T08:15:00Z"])
        );
    }

    #[test]
    fn metadata_rows_carry_partial_object_metadata() {
        let t = table(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            &[role()],
            IncludeObject::default(),
            now(),
            Value::Null,
        );
        assert_eq!(t["metadata"], json!({}));
        let obj = &t["rows"][0]["object"];
        assert_eq!(obj["kind"], "PartialObjectMetadata");
        assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(obj["metadata"]["labels"]["app"], "web");
        assert!(obj.get("rules").is_none());
    }

    #[test]
    fn include_object_and_none() {
        let mut bare = role();
        if let Some(m) = bare.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        let t = table(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            &[bare],
            IncludeObject::Object,
            now(),
            Value::Null,
        );
        let obj = &t["rows"][0]["object"];
        assert_eq!(obj["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(obj["kind"], "Role");
        assert_eq!(obj["rules"], json!([]));

        let t = table(
            "",
            "v1",
            "ConfigMap",
            &[json!({"metadata": {"name": "x"}})],
            IncludeObject::None,
            now(),
            Value::Null,
        );
        assert_eq!(t["rows"][0]["object"], Value::Null);
    }

    #[test]
    fn single_object_table_uses_its_resource_version() {
        let t = object_table(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            &role(),
            IncludeObject::None,
            now(),
        );
        assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn unreadable_objects() {
        let bad = json!({"metadata": {"name": "broken"}, "data": "not a map"});
        let t = table(
            "",
            "v1",
            "ConfigMap",
            std::slice::from_ref(&bad),
            IncludeObject::None,
            now(),
            Value::Null,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["broken", "<unknown>", "<unknown>"])
        );
        let err = try_table(
            "",
            "v1",
            "ConfigMap",
            &[bad],
            IncludeObject::None,
            now(),
            Value::Null,
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("\"broken\""), "{err}");
    }

    #[test]
    fn streamed_table_matches_the_value() {
        let pod = json!({
            "metadata": {"name": "done", "namespace": "ci", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Succeeded"},
        });
        for include in [
            IncludeObject::None,
            IncludeObject::Metadata,
            IncludeObject::Object,
        ] {
            let t = Table::for_object("", "v1", "Pod", &pod, include, now());
            let bytes = serde_json::to_vec(&t).expect("serializes");
            let streamed: Value = serde_json::from_slice(&bytes).expect("valid JSON");
            assert_eq!(streamed, t.to_value());
            assert_eq!(t.len(), 1);
        }
        let t = Table::for_object("", "v1", "Pod", &pod, IncludeObject::Object, now()).to_value();
        assert_eq!(t["metadata"], json!({"resourceVersion": "7"}));
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "v1");
        assert_eq!(t["rows"][0]["object"]["kind"], "Pod");
        assert_eq!(t["rows"][0]["object"]["status"]["phase"], "Succeeded");
        // Rows without conditions carry no `conditions` key at all.
        let t = Table::for_object("", "v1", "ConfigMap", &pod, IncludeObject::None, now());
        assert!(t.to_value()["rows"][0].get("conditions").is_none());
    }

    #[test]
    fn include_object_parsing() {
        assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
        assert_eq!(IncludeObject::parse("object"), None);
    }
}
