//! Small cluster-policy objects: PodDisruptionBudgets, PriorityClasses and Leases.

use std::sync::LazyLock;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::policy::v1::{PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::table::{Ctx, Printer, Row, TableError, decode, int, name, s};
use crate::view::Meta;

/// Slim metadata plus a typed spec and status.
#[derive(Default, Deserialize)]
#[serde(default)]
struct SpecStatusView<'a, Spec, Status> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: Spec,
    status: Status,
}

static PDB_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Min Available",
            "The minimum number of pods that must be available.",
        ),
        Column::string(
            "Max Unavailable",
            "The maximum number of pods that may be unavailable.",
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        columns::age(),
    ])
});

pub(crate) static POD_DISRUPTION_BUDGET: Printer = Printer {
    columns: &PDB_COLUMNS,
    row: pdb_row,
};

fn int_or_string(v: Option<&IntOrString>) -> String {
    match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => "N/A".to_string(),
    }
}

fn pdb_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let pdb: SpecStatusView<'_, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus> =
        decode(obj, "PodDisruptionBudget")?;
    let spec = pdb.spec;
    let allowed = pdb.status.disruptions_allowed;
    Ok(vec![
        name(&pdb.metadata),
        s(int_or_string(spec.min_available.as_ref())),
        s(int_or_string(spec.max_unavailable.as_ref())),
        int(allowed),
        ctx.age(&pdb.metadata),
    ]
    .into())
}

static PRIORITY_CLASS_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::new("Value", "integer", doc::<PriorityClass>("value")),
        Column::new(
            "Global-Default",
            "boolean",
            doc::<PriorityClass>("globalDefault"),
        ),
        columns::age(),
        // Priority 0 upstream, so plain `kubectl get priorityclasses` shows it.
        Column::string("PreemptionPolicy", doc::<PriorityClass>("preemptionPolicy")),
    ])
});

pub(crate) static PRIORITY_CLASS: Printer = Printer {
    columns: &PRIORITY_CLASS_COLUMNS,
    row: priority_class_row,
};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PriorityClassView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    value: i32,
    global_default: Option<bool>,
    preemption_policy: Option<&'a str>,
}

fn priority_class_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let pc: PriorityClassView<'_> = decode(obj, "PriorityClass")?;
    // The server defaults the policy to PreemptLowerPriority.
    let policy = pc.preemption_policy.unwrap_or("PreemptLowerPriority");
    Ok(vec![
        name(&pc.metadata),
        int(pc.value),
        Value::Bool(pc.global_default.unwrap_or(false)),
        ctx.age(&pc.metadata),
        s(policy),
    ]
    .into())
}

static LEASE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Holder", doc::<LeaseSpec>("holderIdentity")),
        columns::age(),
    ])
});

pub(crate) static LEASE: Printer = Printer {
    columns: &LEASE_COLUMNS,
    row: lease_row,
};

fn lease_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let lease: SpecStatusView<'_, LeaseSpec, serde::de::IgnoredAny> = decode(obj, "Lease")?;
    let holder = lease.spec.holder_identity.unwrap_or_default();
    Ok(vec![name(&lease.metadata), s(holder), ctx.age(&lease.metadata)].into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn pod_disruption_budgets() {
        assert_eq!(
            header_line("policy", "v1", "PodDisruptionBudget"),
            "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"
        );
        let pdb = json!({"metadata": {"name": "web", "creationTimestamp": ago(30)},
                         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
                         "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                                    "expectedPods": 3}});
        assert_eq!(
            cells("policy", "v1", "PodDisruptionBudget", pdb),
            json!(["web", "2", "N/A", 1, "30s"])
        );
        let pct = json!({"metadata": {"name": "db"}, "spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            cells("policy", "v1", "PodDisruptionBudget", pct),
            json!(["db", "N/A", "25%", 0, "<unknown>"])
        );
    }

    #[test]
    fn priority_classes() {
        assert_eq!(
            header_line("scheduling.k8s.io", "v1", "PriorityClass"),
            "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY"
        );
        let pc = json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(86400)},
                        "value": 2000001000, "description": "x"});
        assert_eq!(
            cells("scheduling.k8s.io", "v1", "PriorityClass", pc),
            json!([
                "system-node-critical",
                2000001000,
                false,
                "24h",
                "PreemptLowerPriority"
            ])
        );
        let never = json!({"metadata": {"name": "batch"}, "value": -10, "globalDefault": true,
                           "preemptionPolicy": "Never"});
        assert_eq!(
            cells("scheduling.k8s.io", "v1", "PriorityClass", never),
            json!(["batch", -10, true, "<unknown>", "Never"])
        );
    }

    #[test]
    fn leases() {
        assert_eq!(
            header_line("coordination.k8s.io", "v1", "Lease"),
            "NAME HOLDER AGE"
        );
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(7)},
                           "spec": {"holderIdentity": "node-1_0c8e", "leaseDurationSeconds": 15}});
        assert_eq!(
            cells("coordination.k8s.io", "v1", "Lease", lease),
            json!(["kube-scheduler", "node-1_0c8e", "7s"])
        );
        let free = json!({"metadata": {"name": "free"}, "spec": {}});
        assert_eq!(cells("coordination.k8s.io", "v1", "Lease", free)[1], "");
    }
}
