//! Pods: `NAME READY STATUS RESTARTS AGE` and, wide, `IP NODE NOMINATED NODE READINESS GATES`.
//!
//! STATUS is the one cell that is computed rather than read: it walks init containers first
//! (`Init:1/3`, `Init:CrashLoopBackOff`), then the app containers from last to first so the first
//! container's waiting or terminated reason wins (`CrashLoopBackOff`, `ContainerCreating`,
//! `Completed`), and finally lets a deletion timestamp override it (`Terminating`). Sidecars
//! (init containers with `restartPolicy: Always`) count towards READY and RESTARTS like app
//! containers. RESTARTS gains `(5m ago)` from the latest `lastState.terminated.finishedAt`.

use std::sync::LazyLock;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::columns::{self, Column, doc};
use crate::table::{Ctx, Printer, Row, TableError, decode, name, s};
use crate::view::{ConditionView, ContainerView, Count, Meta, condition_true};

static COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Ready",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::string(
            "Status",
            "The aggregate status of the containers in this pod.",
        ),
        Column::string(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        columns::age(),
        Column::string("IP", doc::<PodStatus>("podIP")).wide(),
        Column::string("Node", doc::<PodSpec>("nodeName")).wide(),
        Column::string("Nominated Node", doc::<PodStatus>("nominatedNodeName")).wide(),
        Column::string("Readiness Gates", doc::<PodSpec>("readinessGates")).wide(),
    ])
});

pub(crate) static POD: Printer = Printer {
    columns: &COLUMNS,
    row,
};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PodView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: SpecView<'a>,
    #[serde(borrow)]
    status: StatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SpecView<'a> {
    /// Only the number of app containers matters; not reading them keeps listings cheap.
    containers: Count,
    #[serde(borrow)]
    init_containers: Vec<ContainerView<'a>>,
    node_name: Option<&'a str>,
    #[serde(borrow)]
    readiness_gates: Vec<GateView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GateView<'a> {
    condition_type: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StatusView<'a> {
    phase: Option<&'a str>,
    reason: Option<&'a str>,
    #[serde(borrow)]
    conditions: Vec<ConditionView<'a>>,
    #[serde(borrow)]
    init_container_statuses: Vec<ContainerStatusView<'a>>,
    #[serde(borrow)]
    container_statuses: Vec<ContainerStatusView<'a>>,
    #[serde(rename = "podIP")]
    pod_ip: Option<&'a str>,
    #[serde(rename = "podIPs", borrow)]
    pod_ips: Vec<PodIpView<'a>>,
    nominated_node_name: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PodIpView<'a> {
    ip: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ContainerStatusView<'a> {
    name: Option<&'a str>,
    ready: bool,
    restart_count: i32,
    started: Option<bool>,
    #[serde(borrow)]
    state: Option<StateView<'a>>,
    #[serde(borrow)]
    last_state: Option<StateView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct StateView<'a> {
    running: Option<IgnoredAny>,
    #[serde(borrow)]
    terminated: Option<TerminatedView<'a>>,
    #[serde(borrow)]
    waiting: Option<WaitingView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TerminatedView<'a> {
    exit_code: i32,
    reason: Option<&'a str>,
    signal: Option<i32>,
    finished_at: Option<Time>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct WaitingView<'a> {
    reason: Option<&'a str>,
}

fn finished_at(cs: &ContainerStatusView<'_>) -> Option<Timestamp> {
    cs.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
        .map(|t| t.0)
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `hasPodReadyCondition`: any Ready condition that is True (not just the first).
fn any_condition_true(conditions: &[ConditionView<'_>], ty: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == Some(ty) && c.status == Some("True"))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn is_sidecar(c: &ContainerView<'_>) -> bool {
    c.restart_policy == Some("Always")
}

fn row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let pod: PodView<'_> = decode(obj, "Pod")?;
    let spec = &pod.spec;
    let status = &pod.status;
    let conditions = status.conditions.as_slice();

    let phase = status.phase.unwrap_or_default();
    let mut reason = non_empty(status.reason).unwrap_or(phase).to_string();
    if conditions
        .iter()
        .any(|c| c.type_ == Some("PodScheduled") && c.reason == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".to_string();
    }

    let total = spec.containers.0
        + spec
            .init_containers
            .iter()
            .filter(|c| is_sidecar(c))
            .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let mut initializing = false;
    for (i, cs) in status.init_container_statuses.iter().enumerate() {
        restarts += i64::from(cs.restart_count);
        last_restart = later(last_restart, finished_at(cs));
        // Pods have a handful of init containers at most: a linear search beats hashing.
        let sidecar = spec
            .init_containers
            .iter()
            .find(|c| c.name == cs.name)
            .is_some_and(is_sidecar);
        if sidecar {
            sidecar_restarts += i64::from(cs.restart_count);
            last_sidecar_restart = later(last_sidecar_restart, finished_at(cs));
        }
        let state = cs.state.as_ref();
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let waiting_reason = non_empty(
            state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason),
        );
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar && cs.started == Some(true) {
            if cs.ready {
                ready += 1;
            }
            continue;
        }
        reason = match (terminated, waiting_reason) {
            (Some(t), _) => match non_empty(t.reason) {
                Some(r) => format!("Init:{r}"),
                None => match t.signal.unwrap_or(0) {
                    0 => format!("Init:ExitCode:{}", t.exit_code),
                    sig => format!("Init:Signal:{sig}"),
                },
            },
            (None, Some(r)) if r != "PodInitializing" => format!("Init:{r}"),
            _ => format!("Init:{i}/{}", spec.init_containers.len()),
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in status.container_statuses.iter().rev() {
            restarts += i64::from(cs.restart_count);
            last_restart = later(last_restart, finished_at(cs));
            let state = cs.state.as_ref();
            let waiting_reason = non_empty(
                state
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason),
            );
            let terminated = state.and_then(|s| s.terminated.as_ref());
            if let Some(r) = waiting_reason {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                reason = match (non_empty(t.reason), t.signal.unwrap_or(0)) {
                    (Some(r), _) => r.to_string(),
                    (None, 0) => format!("ExitCode:{}", t.exit_code),
                    (None, sig) => format!("Signal:{sig}"),
                };
            } else if cs.ready && state.is_some_and(|s| s.running.is_some()) {
                has_running = true;
                ready += 1;
            }
        }
        // A container that completed while another still runs does not make the pod Completed.
        if reason == "Completed" && has_running {
            reason = if any_condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason == Some("NodeLost") {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", ctx.since_ts(t)),
        _ => restarts.to_string(),
    };

    // podIP is authoritative over podIPs, as in upstream's conversion of v1 pods.
    let pod_ip = non_empty(status.pod_ip)
        .or_else(|| non_empty(status.pod_ips.first().and_then(|ip| ip.ip)))
        .unwrap_or("<none>");
    let node = non_empty(spec.node_name).unwrap_or("<none>");
    let nominated = non_empty(status.nominated_node_name).unwrap_or("<none>");
    let gates = &spec.readiness_gates;
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| condition_true(conditions, g.condition_type.unwrap_or_default()))
            .count();
        format!("{met}/{}", gates.len())
    };

    let row_conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    };

    Ok(Row {
        cells: vec![
            name(&pod.metadata),
            s(format!("{ready}/{total}")),
            s(reason),
            s(restarts_cell),
            ctx.age(&pod.metadata),
            s(pod_ip),
            s(node),
            s(nominated),
            s(readiness_gates),
        ],
        conditions: row_conditions,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::kinds::testutil::{ago, cells, header_line, table_of};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(300)},
            "spec": spec,
            "status": status,
        })
    }

    fn two_containers() -> Value {
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}]})
    }

    fn running(name: &str, ready: bool, restarts: i32) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "image": "x", "imageID": "",
               "state": {"running": {"startedAt": ago(200)}}})
    }

    fn waiting(name: &str, reason: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
               "state": {"waiting": {"reason": reason}}})
    }

    #[test]
    fn headers() {
        assert_eq!(
            header_line("", "v1", "Pod"),
            "NAME READY STATUS RESTARTS AGE [IP] [NODE] [NOMINATED NODE] [READINESS GATES]"
        );
    }

    #[test]
    fn running_pod_one_of_two_ready() {
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "podIP": "10.42.0.7", "podIPs": [{"ip": "10.42.0.7"}],
                   "containerStatuses": [running("app", true, 0), running("log", false, 0)]}),
        );
        assert_eq!(
            cells("", "v1", "Pod", p),
            json!([
                "web-0",
                "1/2",
                "Running",
                "0",
                "5m",
                "10.42.0.7",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
    }

    #[test]
    fn pending_pod_without_status() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            cells("", "v1", "Pod", p),
            json!([
                "p",
                "0/1",
                "",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ])
        );
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending"}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "Pending");
    }

    #[test]
    fn first_container_reason_wins() {
        let p = pod(
            two_containers(),
            json!({"phase": "Pending", "containerStatuses": [
                waiting("app", "ContainerCreating"), waiting("log", "ErrImagePull")]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "ContainerCreating");
    }

    #[test]
    fn crash_loop_with_restarts_ago() {
        let mut cs = waiting("app", "CrashLoopBackOff");
        cs["restartCount"] = json!(5);
        cs["lastState"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}});
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [cs]}),
        );
        let c = cells("", "v1", "Pod", p);
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "5 (5m ago)");
    }

    #[test]
    fn completed_and_failed_pods() {
        let term = |reason: Option<&str>, code: i32, signal: Option<i32>| {
            let mut t = json!({"exitCode": code});
            if let Some(r) = reason {
                t["reason"] = json!(r);
            }
            if let Some(sig) = signal {
                t["signal"] = json!(sig);
            }
            json!({"name": "app", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                   "state": {"terminated": t}})
        };
        let spec = json!({"containers": [{"name": "app"}]});
        let done = pod(
            spec.clone(),
            json!({"phase": "Succeeded", "containerStatuses": [term(Some("Completed"), 0, None)]}),
        );
        let t = table_of("", "v1", "Pod", done);
        assert_eq!(t["rows"][0]["cells"][1], "0/1");
        assert_eq!(t["rows"][0]["cells"][2], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");

        let p = pod(
            spec.clone(),
            json!({"phase": "Failed", "containerStatuses": [term(None, 137, None)]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "ExitCode:137");
        let p = pod(
            spec,
            json!({"phase": "Failed", "containerStatuses": [term(None, 0, Some(9))]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "Signal:9");
    }

    #[test]
    fn completed_container_beside_a_running_one() {
        let done = json!({"name": "app", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                          "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let status = |ready: &str| {
            json!({"phase": "Running",
                   "conditions": [{"type": "Ready", "status": ready}],
                   "containerStatuses": [done.clone(), running("log", true, 0)]})
        };
        let p = pod(two_containers(), status("True"));
        assert_eq!(cells("", "v1", "Pod", p)[2], "Running");
        let p = pod(two_containers(), status("False"));
        assert_eq!(cells("", "v1", "Pod", p)[2], "NotReady");
    }

    #[test]
    fn init_containers() {
        let spec = json!({"initContainers": [{"name": "setup"}, {"name": "migrate"}],
                          "containers": [{"name": "app"}]});
        let init_done = json!({"name": "setup", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                               "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let init_running = json!({"name": "migrate", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                                  "state": {"running": {}}});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [init_done.clone(), init_running],
                   "containerStatuses": [waiting("app", "PodInitializing")]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "Init:1/2");

        let p = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [waiting("setup", "PodInitializing"), waiting("migrate", "PodInitializing")]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "Init:0/2");

        let mut crash = waiting("migrate", "CrashLoopBackOff");
        crash["restartCount"] = json!(3);
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [init_done.clone(), crash]}),
        );
        let c = cells("", "v1", "Pod", p);
        assert_eq!(c[2], "Init:CrashLoopBackOff");
        assert_eq!(c[3], "3");

        let failed = json!({"name": "migrate", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                            "state": {"terminated": {"exitCode": 2}}});
        let p = pod(
            spec.clone(),
            json!({"phase": "Failed", "initContainerStatuses": [init_done.clone(), failed]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "Init:ExitCode:2");

        // All init containers done: the app container speaks.
        let migrate_done = json!({"name": "migrate", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                                  "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let p = pod(
            spec,
            json!({"phase": "Pending",
                   "initContainerStatuses": [init_done, migrate_done],
                   "containerStatuses": [waiting("app", "PodInitializing")]}),
        );
        assert_eq!(cells("", "v1", "Pod", p)[2], "PodInitializing");
    }

    #[test]
    fn sidecars_count_towards_ready_and_restarts() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                          "containers": [{"name": "app"}]});
        let mut sidecar = running("proxy", true, 2);
        sidecar["started"] = json!(true);
        sidecar["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": ago(7200)}});
        let mut app = running("app", true, 1);
        app["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": ago(90)}});
        let p = pod(
            spec,
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                   "initContainerStatuses": [sidecar], "containerStatuses": [app]}),
        );
        let c = cells("", "v1", "Pod", p);
        assert_eq!(c[1], "2/2");
        assert_eq!(c[2], "Running");
        assert_eq!(c[3], "3 (90s ago)");
    }

    #[test]
    fn terminating_unknown_and_gated() {
        let mut p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0)]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(cells("", "v1", "Pod", p.clone())[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("", "v1", "Pod", p.clone())[2], "Unknown");
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(cells("", "v1", "Pod", p)[2], "Succeeded");

        let gated = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(cells("", "v1", "Pod", gated)[2], "SchedulingGated");

        let evicted = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(cells("", "v1", "Pod", evicted)[2], "Evicted");
    }

    #[test]
    fn wide_cells() {
        let p = pod(
            json!({"nodeName": "node-2", "containers": [{"name": "app"}],
                   "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
            json!({"phase": "Running", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
                   "nominatedNodeName": "node-3",
                   "conditions": [{"type": "example.com/lb", "status": "True"},
                                  {"type": "example.com/dns", "status": "False"}],
                   "containerStatuses": [running("app", true, 0)]}),
        );
        let c = cells("", "v1", "Pod", p);
        assert_eq!(c[5], "fd00::5");
        assert_eq!(c[6], "node-2");
        assert_eq!(c[7], "node-3");
        assert_eq!(c[8], "1/2");
    }
}
