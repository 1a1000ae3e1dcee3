//! RoleBindings and ClusterRoleBindings: `NAME ROLE AGE` and, wide, the subjects by kind.
//! Roles and ClusterRoles have no printer upstream and get the generic Name / Created At table.

use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::table::{Ctx, Printer, Row, TableError, decode, name, s};
use crate::view::Meta;

/// A RoleBinding or ClusterRoleBinding as the printer reads it.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct BindingView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    role_ref: RoleRefView<'a>,
    #[serde(borrow)]
    subjects: Vec<SubjectView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RoleRefView<'a> {
    kind: &'a str,
    name: &'a str,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SubjectView<'a> {
    kind: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
}

fn binding_columns(role_doc: String, what: &str) -> Value {
    columns::to_json([
        columns::name(),
        Column::string("Role", role_doc),
        columns::age(),
        Column::string("Users", format!("Users in the {what}")).wide(),
        Column::string("Groups", format!("Groups in the {what}")).wide(),
        Column::string("ServiceAccounts", format!("ServiceAccounts in the {what}")).wide(),
    ])
}

static ROLE_BINDING_COLUMNS: LazyLock<Value> =
    LazyLock::new(|| binding_columns(doc::<RoleBinding>("roleRef"), "roleBinding"));

static CLUSTER_ROLE_BINDING_COLUMNS: LazyLock<Value> =
    LazyLock::new(|| binding_columns(doc::<ClusterRoleBinding>("roleRef"), "clusterRoleBinding"));

pub(crate) static ROLE_BINDING: Printer = Printer {
    columns: &ROLE_BINDING_COLUMNS,
    row: role_binding_row,
};

pub(crate) static CLUSTER_ROLE_BINDING: Printer = Printer {
    columns: &CLUSTER_ROLE_BINDING_COLUMNS,
    row: cluster_role_binding_row,
};

fn role_binding_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    print(&decode(obj, "RoleBinding")?, ctx)
}

fn cluster_role_binding_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    print(&decode(obj, "ClusterRoleBinding")?, ctx)
}

/// `rbac.SubjectsStrings`, joined with ", ": users and groups by name, service accounts as
/// `namespace/name`. Other kinds are not shown.
fn print(b: &BindingView<'_>, ctx: &Ctx) -> Result<Row, TableError> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in &b.subjects {
        match subject.kind {
            "User" => users.push(subject.name.to_string()),
            "Group" => groups.push(subject.name.to_string()),
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{}",
                subject.namespace.unwrap_or_default(),
                subject.name
            )),
            _ => {}
        }
    }
    Ok(vec![
        name(&b.metadata),
        s(format!("{}/{}", b.role_ref.kind, b.role_ref.name)),
        ctx.age(&b.metadata),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(service_accounts.join(", ")),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    const RBAC: &str = "rbac.authorization.k8s.io";

    #[test]
    fn bindings() {
        let expected = "NAME ROLE AGE [USERS] [GROUPS] [SERVICEACCOUNTS]";
        assert_eq!(header_line(RBAC, "v1", "RoleBinding"), expected);
        assert_eq!(header_line(RBAC, "v1", "ClusterRoleBinding"), expected);
        let b = json!({
            "metadata": {"name": "admins", "creationTimestamp": ago(3600 * 5)},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "User", "name": "alice", "apiGroup": RBAC},
                {"kind": "Group", "name": "system:masters", "apiGroup": RBAC},
                {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"},
                {"kind": "User", "name": "bob", "apiGroup": RBAC},
            ],
        });
        assert_eq!(
            cells(RBAC, "v1", "ClusterRoleBinding", b),
            json!([
                "admins",
                "ClusterRole/cluster-admin",
                "5h",
                "alice, bob",
                "system:masters",
                "ci/deployer"
            ])
        );
        let rb = json!({
            "metadata": {"name": "read", "namespace": "dev"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
        });
        assert_eq!(
            cells(RBAC, "v1", "RoleBinding", rb),
            json!(["read", "Role/reader", "<unknown>", "", "", ""])
        );
    }

    #[test]
    fn roles_use_the_generic_table() {
        assert_eq!(header_line(RBAC, "v1", "Role"), "NAME CREATED AT");
        assert_eq!(header_line(RBAC, "v1", "ClusterRole"), "NAME CREATED AT");
        assert_eq!(header_line("", "v1", "LimitRange"), "NAME CREATED AT");
        let role =
            json!({"metadata": {"name": "view", "creationTimestamp": "2024-02-29T23:59:58Z"}});
        assert_eq!(
            cells(RBAC, "v1", "ClusterRole", role),
            json!(["view", "2024-02-29T23:59:58Z"])
        );
        let lr =
            json!({"metadata": {"name": "limits", "creationTimestamp": "2024-03-01T08:00:00.5Z"}});
        assert_eq!(
            cells("", "v1", "LimitRange", lr),
            json!(["limits", "2024-03-01T08:00:00Z"])
        );
    }
}
