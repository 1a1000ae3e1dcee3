//! Column definitions (`columnDefinitions` of a Table) and where their descriptions come from.
//!
//! Upstream takes most column descriptions from the API types' documentation (`SwaggerDoc()`).
//! The same text is in the k8s-openapi schemas, so [`doc`] reads it from there instead of keeping a
//! second copy. Column sets are built once per process and reused as ready JSON.

use schemars::JsonSchema;
use serde_json::{Value, json};

/// One column as the Table lists it.
pub(crate) struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: String,
    priority: i32,
}

impl Column {
    /// A column of `ty` (`string`, `integer`, `boolean`, `date`) shown by plain `kubectl get`.
    pub(crate) fn new(
        name: &'static str,
        ty: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Column {
            name,
            ty,
            format: "",
            description: description.into(),
            priority: 0,
        }
    }

    /// A string column.
    pub(crate) fn string(name: &'static str, description: impl Into<String>) -> Self {
        Column::new(name, "string", description)
    }

    /// Priority 1: kubectl shows it only with `-o wide`.
    pub(crate) fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    /// `format: name` marks the column holding the object's name.
    pub(crate) fn named(mut self) -> Self {
        self.format = "name";
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The documentation of `field` in type `T`, as the OpenAPI schema (and upstream's SwaggerDoc)
/// has it; empty when the field is not documented.
pub(crate) fn doc<T: JsonSchema>(field: &str) -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|f| f.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

type Meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The `Name` column every printer starts with.
pub(crate) fn name() -> Column {
    Column::string("Name", doc::<Meta>("name")).named()
}

/// The `Age` column.
pub(crate) fn age() -> Column {
    Column::string("Age", doc::<Meta>("creationTimestamp"))
}

/// `Containers`, `Images` (and usually `Selector`) shown with `-o wide` by workload printers.
pub(crate) fn containers_images() -> [Column; 2] {
    [
        Column::string("Containers", "Names of each container in the template.").wide(),
        Column::string(
            "Images",
            "Images referenced by each container in the template.",
        )
        .wide(),
    ]
}

/// The JSON array of column definitions.
pub(crate) fn to_json(columns: impl IntoIterator<Item = Column>) -> Value {
    Value::Array(columns.into_iter().map(|c| c.to_json()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_come_from_the_schema() {
        let d = doc::<Meta>("name");
        assert!(
            d.starts_with("Name must be unique within a namespace."),
            "{d}"
        );
        assert_eq!(doc::<Meta>("noSuchField"), "");
    }

    #[test]
    fn column_json_has_every_field() {
        let v = to_json([name(), Column::new("Restarts", "integer", "x").wide()]);
        assert_eq!(v[0]["format"], "name");
        assert_eq!(v[0]["priority"], 0);
        assert_eq!(
            v[1],
            json!({"name": "Restarts", "type": "integer", "format": "", "description": "x", "priority": 1})
        );
    }
}
