//! Pods and everything that carries a pod template: pods, pod templates, replication
//! controllers, apps/v1 workloads and batch/v1 jobs and cron jobs. [`pod_spec`] holds the
//! defaulting and validation of `PodSpec` they share; [`selector`] the label-selector rules;
//! [`common`] small shared checks and the Go rendering of invalid values.

pub mod common;
pub mod cron;
pub mod cronjobs;
pub mod daemonsets;
pub mod deployments;
pub mod image;
pub mod job_policies;
pub mod jobs;
pub mod pod_spec;
pub mod pods;
pub mod podtemplates;
pub mod replicasets;
pub mod replicationcontrollers;
pub mod selector;
pub mod statefulsets;
pub mod template;
