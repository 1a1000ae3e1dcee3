//! The Deployment controller's arithmetic, free of I/O so it can be tested by table: surge and
//! unavailability fenceposts, how far the new ReplicaSet may grow, how far old ones may shrink,
//! proportional scaling, revisions, template equality and the status and conditions a set of
//! ReplicaSets adds up to (upstream's `deployment/util`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations never copied to its ReplicaSets (upstream's skip list).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];
/// Upstream caps `revision-history` at this many characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

// Condition types and reasons, as upstream's.
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0)
        .max(0)
}

fn rs_status(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0).max(0)
}

pub fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| Some(s.replicas))
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.available_replicas)
}

pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.ready_replicas)
}

pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

pub fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `progressDeadlineSeconds`; `None` when unset or the "no deadline" value (MaxInt32).
pub fn progress_deadline(d: &Deployment) -> Option<i64> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
        .map(i64::from)
}

/// `value` of `total`: integers as they are, percentages rounded up or down.
pub fn scaled(value: Option<&IntOrString>, total: i32, default: &str, round_up: bool) -> i32 {
    let text;
    let v = match value {
        Some(IntOrString::Int(i)) => return (*i).max(0),
        Some(IntOrString::String(s)) => s.as_str(),
        None => {
            text = default.to_owned();
            text.as_str()
        }
    };
    let Some(pct) = v
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<i64>().ok())
    else {
        return v.trim().parse::<i32>().unwrap_or(0).max(0);
    };
    let product = pct.max(0) * i64::from(total.max(0));
    let out = if round_up {
        (product + 99) / 100
    } else {
        product / 100
    };
    i32::try_from(out).unwrap_or(i32::MAX)
}

/// (maxSurge, maxUnavailable) for `d`; both zero becomes unavailable 1, as upstream.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let desired = replicas(d);
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, "25%", true);
    let unavailable = scaled(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired,
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) { fenceposts(d).0 } else { 0 }
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

pub fn sum(rss: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    rss.iter().map(|rs| f(rs)).fold(0i32, i32::saturating_add)
}

/// How many replicas the new ReplicaSet should have now (upstream's `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = replicas(d);
    if !is_rolling(d) {
        return desired;
    }
    let current = sum(all, rs_replicas);
    let max_total = desired.saturating_add(max_surge(d));
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min((desired - rs_replicas(new_rs)).max(0));
    rs_replicas(new_rs) + up
}

/// The template with the hash label removed, for comparisons.
fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut()
        && let Some(l) = m.labels.as_mut()
    {
        l.remove(HASH_LABEL);
        if l.is_empty() {
            m.labels = None;
        }
    }
    serde_json::to_value(t).unwrap_or_default()
}

/// Whether two templates are equal but for the hash label (upstream's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

pub fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

pub fn rs_template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

/// The hash of the Deployment's template with its collision count.
pub fn pod_template_hash(d: &Deployment) -> String {
    let count = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    controller_runtime::hash::template_hash(&without_hash(&template(d)), count)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, DESIRED_REPLICAS)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, by creation time then name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Larger first; among equals, newer first (`ReplicaSetsBySizeNewer`) or older first.
pub fn by_size(a: &ReplicaSet, b: &ReplicaSet, newer_first: bool) -> Ordering {
    rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
        if newer_first {
            by_creation(b, a)
        } else {
            by_creation(a, b)
        }
    })
}

/// The annotation changes `d` makes to its new ReplicaSet (upstream's
/// `SetNewReplicaSetAnnotations`): copied Deployment annotations, the revision (and the
/// revision history it replaces), and for a new ReplicaSet the replica annotations.
pub fn new_rs_annotations(
    d: &Deployment,
    current: &BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
) -> BTreeMap<String, String> {
    let mut out = current.clone();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    let old = current.get(REVISION).cloned().unwrap_or_default();
    let old_n: i64 = if old.is_empty() {
        0
    } else {
        match old.parse() {
            Ok(n) => n,
            // Not ours to fix: leave the revision alone.
            Err(_) => return out,
        }
    };
    if old_n < new_revision {
        out.insert(REVISION.to_owned(), new_revision.to_string());
        if !old.is_empty() {
            let mut history: Vec<String> = current
                .get(REVISION_HISTORY)
                .map(|h| {
                    h.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            history.push(old);
            while history.join(",").len() > MAX_REVISION_HISTORY_CHARS && history.len() > 1 {
                history.remove(0);
            }
            out.insert(REVISION_HISTORY.to_owned(), history.join(","));
        }
    }
    if !exists {
        out.insert(DESIRED_REPLICAS.to_owned(), replicas(d).to_string());
        out.insert(
            MAX_REPLICAS.to_owned(),
            replicas(d).saturating_add(max_surge(d)).to_string(),
        );
    }
    out
}

/// How many replicas `rs` gains (or loses) when the Deployment scales by `to_add`
/// (upstream's `GetProportion`).
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d).saturating_add(max_surge(d));
    let annotated = annotation_i32(rs, MAX_REPLICAS).unwrap_or_else(|| {
        d.status
            .as_ref()
            .map(|s| s.replicas.unwrap_or(0))
            .unwrap_or(0)
    });
    if annotated <= 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    (size.round() as i32) - rs_replicas(rs)
}

/// The proportional new sizes of `active` ReplicaSets when the Deployment's size changed in
/// the middle of a rollout (upstream's `scale`, rolling case).
pub fn proportional_sizes(d: &Deployment, active: &mut [&ReplicaSet]) -> BTreeMap<String, i32> {
    let total = sum(active, rs_replicas);
    let allowed = if replicas(d) > 0 {
        replicas(d).saturating_add(max_surge(d))
    } else {
        0
    };
    let to_add = allowed - total;
    active.sort_by(|a, b| by_size(a, b, to_add > 0));
    let mut added = 0;
    let mut sizes = BTreeMap::new();
    for rs in active.iter() {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let p = if to_add != 0 {
            proportion(rs, d, to_add, added)
        } else {
            0
        };
        added += p;
        sizes.insert(name, rs_replicas(rs) + p);
    }
    if added != to_add
        && let Some(first) = active.first()
    {
        let name = first.metadata.name.clone().unwrap_or_default();
        let size = sizes.entry(name).or_insert(0);
        *size = (*size + to_add - added).max(0);
    }
    sizes
}

/// The status the ReplicaSets add up to (upstream's `calculateStatus`), with the
/// `Available` condition.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let available = sum(all, rs_available);
    let total_spec = sum(all, rs_replicas);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(all, rs_actual)),
        updated_replicas: Some(new_rs.map(rs_actual).unwrap_or(0)),
        ready_replicas: Some(sum(all, rs_ready)),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        ..Default::default()
    };
    let cond = if available >= replicas(d) - max_unavailable(d) {
        condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    };
    set_condition(&mut status, cond);
    status
}

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.iter().flatten().find(|c| c.type_ == type_)
}

pub fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
        if cs.is_empty() {
            s.conditions = None;
        }
    }
}

/// Sets `c`; an unchanged status and reason keeps the existing one (timestamps included), an
/// unchanged status keeps its transition time (upstream's `SetDeploymentCondition`).
pub fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = get_condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &c.type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

/// Every replica updated, available and nothing else left (upstream's `DeploymentComplete`).
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's last status.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// When the current Progressing condition's deadline passes (`None`: no deadline applies).
pub fn deadline(d: &Deployment, s: &DeploymentStatus) -> Option<Timestamp> {
    let secs = progress_deadline(d)?;
    let c = get_condition(s, PROGRESSING)?;
    if c.reason.as_deref() == Some(NEW_RS_AVAILABLE) || c.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = c.last_update_time.as_ref()?.0;
    from.checked_add(jiff::SignedDuration::from_secs(secs)).ok()
}

/// Whether the rollout ran out of time (upstream's `DeploymentTimedOut`).
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if progress_deadline(d).is_none() {
        return false;
    }
    match get_condition(s, PROGRESSING) {
        Some(c) if c.reason.as_deref() == Some(TIMED_OUT) => true,
        _ => deadline(d, s).is_some_and(|at| at < now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec: serde_json::Value) -> Deployment {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "ns", "generation": 1}, "spec": spec}),
        )
        .unwrap()
    }

    fn rs(name: &str, replicas: i32, annotations: serde_json::Value, created: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
            "spec": {"replicas": replicas, "selector": {}},
        }))
        .unwrap()
    }

    fn rolling(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        deployment(json!({"replicas": replicas, "selector": {}, "template": {},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}))
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let cases = [
            (10, json!("25%"), json!("25%"), (3, 2)),
            (4, json!("25%"), json!("25%"), (1, 1)),
            (1, json!("25%"), json!("25%"), (1, 0)),
            (3, json!(0), json!(0), (0, 1)),
            (5, json!(2), json!("0%"), (2, 0)),
            (10, json!("100%"), json!(3), (10, 3)),
        ];
        for (replicas, s, u, want) in cases {
            assert_eq!(
                fenceposts(&rolling(replicas, s.clone(), u.clone())),
                want,
                "{replicas} {s} {u}"
            );
        }
        let d = rolling(2, json!(1), json!(5));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
        let recreate = deployment(
            json!({"replicas": 3, "selector": {}, "template": {}, "strategy": {"type": "Recreate"}}),
        );
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn the_new_replica_set_grows_within_the_surge() {
        let d = rolling(10, json!(3), json!(2));
        let old = rs("old", 10, json!({}), "2025-01-01T00:00:00Z");
        let new = rs("new", 0, json!({}), "2025-01-02T00:00:00Z");
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let new5 = rs("new", 5, json!({}), "2025-01-02T00:00:00Z");
        let old8 = rs("old", 8, json!({}), "2025-01-01T00:00:00Z");
        // 13 pods already: at the limit.
        assert_eq!(new_rs_new_replicas(&d, &[&old8, &new5], &new5), 5);
        let old2 = rs("old", 2, json!({}), "2025-01-01T00:00:00Z");
        // Never beyond the desired count.
        assert_eq!(new_rs_new_replicas(&d, &[&old2, &new5], &new5), 10);
    }

    #[test]
    fn proportional_scaling_follows_upstream() {
        // 10 replicas, surge 3: old 8 + new 5 = 13 (max-replicas 13). Scale to 20 (max 23):
        // 10 more, split 8:5 → old +6, new +4.
        let mut d = rolling(20, json!(3), json!(2));
        d.status = Some(DeploymentStatus {
            replicas: Some(13),
            ..Default::default()
        });
        let old = rs(
            "old",
            8,
            json!({MAX_REPLICAS: "13"}),
            "2025-01-01T00:00:00Z",
        );
        let new = rs(
            "new",
            5,
            json!({MAX_REPLICAS: "13"}),
            "2025-01-02T00:00:00Z",
        );
        let sizes = proportional_sizes(&d, &mut [&old, &new]);
        assert_eq!(sizes["old"] + sizes["new"], 23);
        assert_eq!((sizes["old"], sizes["new"]), (14, 9));
        // Scaling to zero takes everything away.
        let zero = rolling(0, json!(3), json!(2));
        let sizes = proportional_sizes(&zero, &mut [&old, &new]);
        assert_eq!((sizes["old"], sizes["new"]), (0, 0));
    }

    #[test]
    fn revisions_and_annotations() {
        let mut d = rolling(3, json!(1), json!(0));
        d.metadata.annotations = Some(BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (REVISION.to_string(), "9".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
        ]));
        let fresh = new_rs_annotations(&d, &BTreeMap::new(), 1, false);
        assert_eq!(fresh.get("team").map(String::as_str), Some("a"));
        assert_eq!(fresh.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(fresh.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(fresh.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        assert!(!fresh.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!fresh.contains_key(REVISION_HISTORY));
        // An old ReplicaSet brought back (rollback) gets the next revision and remembers its old one.
        let back = new_rs_annotations(
            &d,
            &BTreeMap::from([(REVISION.to_string(), "1".to_string())]),
            3,
            true,
        );
        assert_eq!(back.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(back.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(!back.contains_key(DESIRED_REPLICAS));
        // A newer revision is never lowered.
        let keep = new_rs_annotations(
            &d,
            &BTreeMap::from([(REVISION.to_string(), "5".to_string())]),
            3,
            true,
        );
        assert_eq!(keep.get(REVISION).map(String::as_str), Some("5"));
    }

    #[test]
    fn templates_compare_without_the_hash() {
        let a: PodTemplateSpec = serde_json::from_value(json!({"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}})).unwrap();
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "abc".into());
        assert!(equal_ignore_hash(&a, &b));
        b.spec.as_mut().unwrap().containers[0].image = Some("y".into());
        assert!(!equal_ignore_hash(&a, &b));
    }

    #[test]
    fn conditions_keep_their_times_unless_the_status_changes() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
        let mut s = DeploymentStatus::default();
        set_condition(&mut s, condition(PROGRESSING, "True", RS_UPDATED, "a", t0));
        set_condition(&mut s, condition(PROGRESSING, "True", RS_UPDATED, "b", t1));
        assert_eq!(
            get_condition(&s, PROGRESSING).unwrap().message.as_deref(),
            Some("a")
        );
        set_condition(
            &mut s,
            condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "c", t1),
        );
        let c = get_condition(&s, PROGRESSING).unwrap();
        assert_eq!(
            (
                c.last_transition_time.as_ref().unwrap().0,
                c.last_update_time.as_ref().unwrap().0
            ),
            (t0, t1)
        );
        set_condition(&mut s, condition(PROGRESSING, "False", TIMED_OUT, "d", t1));
        assert_eq!(
            get_condition(&s, PROGRESSING)
                .unwrap()
                .last_transition_time
                .as_ref()
                .unwrap()
                .0,
            t1
        );
    }

    #[test]
    fn deadlines_run_from_the_last_progress() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let mut d = rolling(3, json!(1), json!(0));
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60);
        let mut s = DeploymentStatus::default();
        set_condition(&mut s, condition(PROGRESSING, "True", RS_UPDATED, "x", t0));
        let at = deadline(&d, &s).unwrap();
        assert_eq!(at, "2025-01-01T00:01:00Z".parse().unwrap());
        assert!(!timed_out(&d, &s, at));
        assert!(timed_out(&d, &s, "2025-01-01T00:01:01Z".parse().unwrap()));
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(i32::MAX);
        assert!(!timed_out(&d, &s, "2030-01-01T00:00:00Z".parse().unwrap()));
    }
}
