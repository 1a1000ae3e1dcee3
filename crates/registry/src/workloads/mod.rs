//! Pods and everything that carries a pod template: pods, pod templates, replication
//! controllers, apps/v1 workloads and batch/v1 jobs and cron jobs. `pod_spec` holds the
//! defaulting and validation of `PodSpec` they share.

pub mod cronjobs;
pub mod daemonsets;
pub mod deployments;
pub mod jobs;
pub mod pods;
pub mod podtemplates;
pub mod replicasets;
pub mod replicationcontrollers;
pub mod statefulsets;
