//! What the Job controller needs to know about a pod, and how it builds a new one from a
//! Job's template (upstream's pod control plus the Indexed-mode additions).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Held by every pod the controller creates until the pod's outcome is counted in the Job's
/// status, so a pod deleted right after finishing is still counted exactly once.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation (and label) carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable an Indexed Job's containers read their index from.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Longest `generateName` prefix: a name is at most 63 characters and the server appends
/// five random ones.
const MAX_GENERATED_PREFIX: usize = 58;

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn is_succeeded(p: &Pod) -> bool {
    phase(p) == "Succeeded"
}

pub fn is_phase_failed(p: &Pod) -> bool {
    phase(p) == "Failed"
}

fn is_terminal(p: &Pod) -> bool {
    is_succeeded(p) || is_phase_failed(p)
}

pub fn is_deleting(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Neither finished nor being deleted (upstream's `FilterActivePods`).
pub fn is_active(p: &Pod) -> bool {
    !is_terminal(p) && !is_deleting(p)
}

/// Being deleted but not finished yet (upstream's `CountTerminatingPods`).
pub fn is_terminating(p: &Pod) -> bool {
    is_deleting(p) && !is_terminal(p)
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn has_tracking_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|f| f == TRACKING_FINALIZER)
}

/// The completion index from the pod's annotation (what upstream trusts), if it is a valid
/// non-negative number.
pub fn completion_index(p: &Pod) -> Option<i32> {
    let raw = p.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    raw.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// When the pod finished: the latest container termination, else the last condition change,
/// else its deletion or creation (for the backoff between recreations).
pub fn finish_time(p: &Pod) -> Option<Timestamp> {
    let status = p.status.as_ref();
    let terminated = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .filter_map(|cs| cs.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    terminated
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
                .max()
        })
        .or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// `name-` (or `name-<index>-`), shortened so the generated name stays valid.
pub fn generate_name(job_name: &str, index: Option<i32>) -> String {
    let suffix = match index {
        Some(i) => format!("-{i}-"),
        None => "-".to_owned(),
    };
    let room = MAX_GENERATED_PREFIX.saturating_sub(suffix.len());
    let mut end = job_name.len().min(room);
    while !job_name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &job_name[..end])
}

/// A new pod for `job` (for `index` in Indexed mode): the template with the tracking
/// finalizer and a controller reference; Indexed pods also get their index as annotation,
/// label, `JOB_COMPLETION_INDEX` and hostname `<job>-<index>`.
pub fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = tmeta.labels.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = tmeta.annotations.unwrap_or_default();
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_owned());
    }
    let mut spec: PodSpec = template.spec.unwrap_or_default();
    if let Some(i) = index {
        annotations.insert(COMPLETION_INDEX.to_owned(), i.to_string());
        labels.insert(COMPLETION_INDEX.to_owned(), i.to_string());
        spec.hostname = Some(format!("{job_name}-{i}"));
        add_index_env(&mut spec);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(&job_name, index)),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_runtime::owners::controller_reference(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Adds `JOB_COMPLETION_INDEX` (from the index annotation) to every container that does not
/// set it already.
fn add_index_env(spec: &mut PodSpec) {
    let var = EnvVar {
        name: COMPLETION_INDEX_ENV.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    };
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
            env.push(var.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("job-name".to_string(), "pi".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "c".into(),
                            ..Default::default()
                        }],
                        init_containers: Some(vec![Container {
                            name: "init".into(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn indexed_pods_carry_their_index_everywhere() {
        let p = new_pod(&job(), Some(3));
        let m = &p.metadata;
        assert_eq!(m.generate_name.as_deref(), Some("pi-3-"));
        assert_eq!(m.labels.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(m.labels.as_ref().unwrap()["job-name"], "pi");
        assert_eq!(m.annotations.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(
            m.finalizers.as_deref(),
            Some(&[TRACKING_FINALIZER.to_string()][..])
        );
        let owner = &m.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "u1"));
        assert_eq!(owner.controller, Some(true));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-3"));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let env = c.env.as_ref().unwrap();
            assert_eq!(env.len(), 1, "{}", c.name);
            assert_eq!(
                env[0]
                    .value_from
                    .as_ref()
                    .unwrap()
                    .field_ref
                    .as_ref()
                    .unwrap()
                    .field_path,
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
        }
        assert_eq!(completion_index(&p), Some(3));
    }

    #[test]
    fn non_indexed_pods_are_plain_copies() {
        let p = new_pod(&job(), None);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        assert!(p.metadata.annotations.is_none());
        assert!(p.spec.as_ref().unwrap().hostname.is_none());
        assert!(p.spec.as_ref().unwrap().containers[0].env.is_none());
        assert!(has_tracking_finalizer(&p));
        assert_eq!(completion_index(&p), None);
    }

    #[test]
    fn long_names_are_cut_to_leave_room_for_the_random_suffix() {
        let long = "a".repeat(70);
        assert_eq!(generate_name(&long, None).len(), 58);
        let g = generate_name(&long, Some(12));
        assert_eq!(g.len(), 58);
        assert!(g.ends_with("-12-"));
        assert_eq!(generate_name("short", Some(0)), "short-0-");
    }
}
