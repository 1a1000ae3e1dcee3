//! VolumeBinding: the hook points of upstream's `pkg/scheduler/framework/plugins/volumebinding`
//! (PreFilter, Filter, Reserve/Unreserve, PreBind), without the PersistentVolumeClaim logic yet.
//!
//! What it does today, precisely:
//! * A pod with no `persistentVolumeClaim` and no `ephemeral` volume (an ephemeral volume is a
//!   claim named `<pod>-<volume>`) is none of its business: PreFilter returns Skip (so Filter
//!   does not run), and Reserve, PreBind and Filter all succeed for it.
//! * A pod with such a volume is rejected at PreFilter, UnschedulableAndUnresolvable, with
//!   upstream's message for unbound immediate claims: the scheduler has no claim, volume or
//!   storage-class lister yet, so it cannot tell a bound claim from an unbound one, nor pick
//!   nodes a volume can reach, and binding such a pod anywhere could strand it.
//!   Filter, called without PreFilter (e.g. during preemption's what-ifs), rejects such pods
//!   the same way.
//! * Reserve/Unreserve and PreBind have nothing to claim or bind, so they succeed.
//!
//! The args (`VolumeBindingArgs`) are validated as upstream does with the StorageCapacityScoring
//! feature off: `bindTimeoutSeconds` (default 600) must not be negative, `shape` must be unset.

use std::sync::Arc;

use api::validation::FieldError;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PreBindPlugin, PreFilterPlugin,
    PreFilterResult, ReservePlugin, Snapshot, Status,
};

pub const NAME: &str = "VolumeBinding";

const STATE_KEY: &str = "VolumeBinding";

/// Upstream's reason when a pod's immediate-binding claims are not bound yet.
pub const ERR_REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

/// `VolumeBindingArgs` of `kubescheduler.config.k8s.io/v1`, defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBindingArgs {
    /// How long PreBind may wait for volumes to bind (unused until claims are supported).
    pub bind_timeout_seconds: i64,
}

impl Default for VolumeBindingArgs {
    fn default() -> Self {
        VolumeBindingArgs {
            bind_timeout_seconds: 600,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArgs {
    #[serde(default)]
    api_version: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    bind_timeout_seconds: Option<i64>,
    #[serde(default)]
    shape: Option<serde_json::Value>,
}

impl VolumeBindingArgs {
    /// Decodes, defaults and validates the args (`None` or `null`: the defaults).
    pub fn from_json(args: Option<&serde_json::Value>) -> Result<Self, String> {
        let Some(value) = args.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let raw =
            RawArgs::deserialize(value).map_err(|e| format!("decoding VolumeBindingArgs: {e}"))?;
        let _ = raw.api_version;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "VolumeBindingArgs") {
            return Err(format!("want args of kind VolumeBindingArgs, got {kind:?}"));
        }
        let bind_timeout_seconds = raw
            .bind_timeout_seconds
            .unwrap_or(Self::default().bind_timeout_seconds);
        if bind_timeout_seconds < 0 {
            return Err(FieldError::invalid(
                "bindTimeoutSeconds",
                bind_timeout_seconds,
                "invalid BindTimeoutSeconds, should not be a negative value",
            )
            .to_string());
        }
        if let Some(shape) = raw.shape.filter(|s| !s.is_null()) {
            return Err(FieldError::invalid(
                "shape",
                shape.to_string(),
                "unsupported when StorageCapacityScoring feature is disabled",
            )
            .to_string());
        }
        Ok(VolumeBindingArgs {
            bind_timeout_seconds,
        })
    }
}

/// The plugin.
pub struct VolumeBinding {
    pub args: VolumeBindingArgs,
}

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(VolumeBinding {
        args: VolumeBindingArgs::from_json(args)?,
    }))
}

/// What PreFilter found: the names of the claims the pod uses.
#[derive(Clone, Debug, Default)]
struct StateData {
    claims: Vec<String>,
}

/// The claims `pod` uses: `persistentVolumeClaim` volumes by claim name, `ephemeral` volumes
/// by the claim name the ephemeral-volume controller gives them.
pub fn pod_claims(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(pvc) = v.persistent_volume_claim.as_ref() {
                Some(pvc.claim_name.clone())
            } else if v.ephemeral.is_some() {
                Some(format!("{pod_name}-{}", v.name))
            } else {
                None
            }
        })
        .collect()
}

fn verdict(claims: &[String]) -> Status {
    if claims.is_empty() {
        Status::success()
    } else {
        Status::unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
    }
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }

    fn pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        Some(self)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        // Upstream also waits for claim, volume and storage-class changes, which are not
        // cluster events here yet; node changes are the part that exists.
        vec![ClusterEvent::NodeAdd, ClusterEvent::NodeUpdate]
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let claims = pod_claims(pod);
        if claims.is_empty() {
            state.write(STATE_KEY, StateData::default());
            return (PreFilterResult::all(), Status::skip());
        }
        tracing::debug!(
            pod = pod.metadata.name.as_deref().unwrap_or_default(),
            ?claims,
            "rejecting a pod with PersistentVolumeClaims: claim binding is not supported yet"
        );
        let status = verdict(&claims);
        state.write(STATE_KEY, StateData { claims });
        (PreFilterResult::all(), status)
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, pod: &Pod, _node: &NodeInfo) -> Status {
        match state.read::<StateData>(STATE_KEY) {
            Some(s) => verdict(&s.claims),
            None => verdict(&pod_claims(pod)),
        }
    }
}

impl ReservePlugin for VolumeBinding {
    fn reserve(&self, _state: &mut CycleState, _pod: &Pod, _node: &str) -> Status {
        // Only pods without claims get this far: nothing to assume.
        Status::success()
    }

    fn unreserve(&self, _state: &mut CycleState, _pod: &Pod, _node: &str) {}
}

impl PreBindPlugin for VolumeBinding {
    fn pre_bind(&self, _state: &CycleState, _pod: &Pod, _node: &str) -> Status {
        // Nothing was assumed at Reserve, so there is nothing to bind.
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{Value, json};

    fn pod(volumes: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes}
        }))
        .unwrap()
    }

    #[test]
    fn pods_with_claims_are_rejected() {
        let node = NodeInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap(),
        ));
        let cases = [
            ("no volumes", json!(null), vec![]),
            (
                "config volumes",
                json!([{"name": "cfg", "configMap": {"name": "x"}}, {"name": "tmp", "emptyDir": {}}]),
                vec![],
            ),
            (
                "claim",
                json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}]),
                vec!["data-0"],
            ),
            (
                "ephemeral",
                json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]),
                vec!["web-scratch"],
            ),
        ];
        let plugin = VolumeBinding {
            args: VolumeBindingArgs::default(),
        };
        for (name, volumes, claims) in cases {
            let p = pod(volumes);
            assert_eq!(pod_claims(&p), claims, "{name}");
            let mut state = CycleState::new();
            let (result, s) =
                PreFilterPlugin::pre_filter(&plugin, &mut state, &p, &Snapshot::default());
            assert_eq!(result, PreFilterResult::all(), "{name}");
            if claims.is_empty() {
                assert!(s.is_skip(), "{name}: {s}");
                for st in [&state, &CycleState::new()] {
                    assert!(
                        FilterPlugin::filter(&plugin, st, &p, &node).is_success(),
                        "{name}"
                    );
                }
                assert!(ReservePlugin::reserve(&plugin, &mut state, &p, "n").is_success());
                assert!(PreBindPlugin::pre_bind(&plugin, &state, &p, "n").is_success());
            } else {
                assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "{name}");
                assert_eq!(s.message(), ERR_REASON_UNBOUND_IMMEDIATE, "{name}");
                for st in [&state, &CycleState::new()] {
                    let f = FilterPlugin::filter(&plugin, st, &p, &node);
                    assert_eq!(f.code, Code::UnschedulableAndUnresolvable, "{name}");
                }
            }
        }
    }

    #[test]
    fn args() {
        let cases = [
            (None, Ok(600)),
            (Some(json!(null)), Ok(600)),
            (Some(json!({"bindTimeoutSeconds": 30})), Ok(30)),
            (
                Some(json!({"kind": "VolumeBindingArgs", "bindTimeoutSeconds": 0})),
                Ok(0),
            ),
            (
                Some(json!({"bindTimeoutSeconds": -1})),
                Err(
                    "bindTimeoutSeconds: Invalid value: -1: invalid BindTimeoutSeconds, should not be a negative value",
                ),
            ),
            (
                Some(json!({"shape": [{"utilization": 0, "score": 0}]})),
                Err("shape: Invalid value"),
            ),
            (Some(json!({"bogus": 1})), Err("unknown field `bogus`")),
            (
                Some(json!({"kind": "NodeAffinityArgs"})),
                Err("want args of kind"),
            ),
        ];
        for (args, want) in cases {
            match (VolumeBindingArgs::from_json(args.as_ref()), want) {
                (Ok(a), Ok(t)) => assert_eq!(a.bind_timeout_seconds, t),
                (Err(e), Err(w)) => assert!(e.contains(w), "{e} should contain {w}"),
                (got, want) => panic!("{args:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(new(None).unwrap().name(), NAME);
    }
}
