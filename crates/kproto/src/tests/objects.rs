//! Objects built with `k8s-pb`, encoded with prost, decoded here, compared with the exact JSON
//! upstream's JSON serializer gives the same object.

use std::collections::BTreeMap;

use k8s_pb::api::{apps, batch, coordination, core, networking, policy, rbac, scheduling};
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::RawExtension;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::body;
use crate::decode;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn map<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn meta(name: &str, namespace: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: s(namespace),
        ..Default::default()
    })
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: s(""),
    })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    })
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

fn check(api_version: &str, kind: &str, msg: &impl prost::Message, want: Value) {
    let got = decode(&body(api_version, kind, msg)).expect("decodes");
    assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");
}

#[test]
fn namespace_drops_go_zero_values_of_value_fields() {
    // What kubectl writes for an unset ObjectMeta: every value field, empty.
    let ns = core::v1::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: s("team-a"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            labels: map(&[("team", "a".to_string())]),
            ..Default::default()
        }),
        spec: Some(core::v1::NamespaceSpec {
            finalizers: strings(&["kubernetes"]),
        }),
        status: Some(core::v1::NamespaceStatus {
            phase: s(""),
            conditions: vec![],
        }),
    };
    check(
        "v1",
        "Namespace",
        &ns,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"team": "a"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {},
        }),
    );
}

#[test]
fn configmap_keeps_empty_values_and_base64s_binary_data() {
    let cm = core::v1::ConfigMap {
        metadata: meta("cfg", "default"),
        data: map(&[("a", "1".to_string()), ("empty", String::new())]),
        binary_data: map(&[("bin", vec![0u8, 1, 2, 255]), ("nothing", vec![])]),
        immutable: Some(false),
    };
    check(
        "v1",
        "ConfigMap",
        &cm,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"a": "1", "empty": ""},
            "binaryData": {"bin": "AAEC/w==", "nothing": ""},
            "immutable": false,
        }),
    );
}

#[test]
fn secret_data_is_base64() {
    let secret = core::v1::Secret {
        metadata: meta("creds", "default"),
        immutable: None,
        data: map(&[("password", b"s3cr\xc3\xa9t\n".to_vec())]),
        string_data: map(&[("user", "admin".to_string())]),
        r#type: s("Opaque"),
    };
    check(
        "v1",
        "Secret",
        &secret,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"password": "czNjcsOpdAo="},
            "stringData": {"user": "admin"},
            "type": "Opaque",
        }),
    );
}

fn pod_template() -> core::v1::PodTemplateSpec {
    let container = core::v1::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        command: strings(&["nginx"]),
        args: strings(&["-g", "daemon off;"]),
        working_dir: s(""),
        ports: vec![core::v1::ContainerPort {
            name: s("http"),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        env: vec![
            core::v1::EnvVar {
                name: s("MODE"),
                value: s("prod"),
                value_from: None,
            },
            core::v1::EnvVar {
                name: s("EMPTY"),
                value: s(""),
                value_from: None,
            },
            core::v1::EnvVar {
                name: s("POD_IP"),
                value: None,
                value_from: Some(core::v1::EnvVarSource {
                    field_ref: Some(core::v1::ObjectFieldSelector {
                        api_version: s("v1"),
                        field_path: s("status.podIP"),
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::v1::ResourceRequirements {
            limits: map(&[("cpu", quantity("500m")), ("memory", quantity("128Mi"))]),
            requests: map(&[("cpu", quantity("250m"))]),
            claims: vec![],
        }),
        liveness_probe: Some(core::v1::Probe {
            handler: Some(core::v1::ProbeHandler {
                http_get: Some(core::v1::HttpGetAction {
                    path: s("/healthz"),
                    port: int(8080),
                    host: s(""),
                    scheme: s("HTTP"),
                    http_headers: vec![core::v1::HttpHeader {
                        name: s("X-Probe"),
                        value: s("1"),
                    }],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            timeout_seconds: Some(1),
            period_seconds: Some(10),
            success_threshold: Some(1),
            failure_threshold: Some(3),
            termination_grace_period_seconds: None,
        }),
        readiness_probe: Some(core::v1::Probe {
            handler: Some(core::v1::ProbeHandler {
                tcp_socket: Some(core::v1::TcpSocketAction {
                    port: string("http"),
                    host: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        image_pull_policy: s("IfNotPresent"),
        security_context: Some(core::v1::SecurityContext {
            run_as_user: Some(0),
            allow_privilege_escalation: Some(false),
            capabilities: Some(core::v1::Capabilities {
                add: strings(&["NET_BIND_SERVICE"]),
                drop: strings(&["ALL"]),
            }),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    core::v1::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: map(&[("app", "web".to_string())]),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(core::v1::PodSpec {
            containers: vec![container],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(30),
            dns_policy: s(""),
            node_selector: map(&[("kubernetes.io/os", "linux".to_string())]),
            service_account_name: s(""),
            automount_service_account_token: Some(false),
            host_network: Some(false),
            tolerations: vec![core::v1::Toleration {
                key: s("node.kubernetes.io/not-ready"),
                operator: s("Exists"),
                value: s(""),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
            }],
            volumes: vec![core::v1::Volume {
                name: s("scratch"),
                volume_source: Some(core::v1::VolumeSource {
                    empty_dir: Some(core::v1::EmptyDirVolumeSource {
                        medium: s(""),
                        size_limit: Some(quantity("1Gi")),
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
    }
}

fn pod_template_json() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "command": ["nginx"],
                "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "EMPTY"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                ],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                    "requests": {"cpu": "250m"},
                },
                "livenessProbe": {
                    "httpGet": {
                        "path": "/healthz",
                        "port": 8080,
                        "scheme": "HTTP",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                    },
                    "initialDelaySeconds": 5,
                    "timeoutSeconds": 1,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "readinessProbe": {"tcpSocket": {"port": "http"}},
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {
                    "runAsUser": 0,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                },
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "automountServiceAccountToken": false,
            "tolerations": [{
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }],
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    })
}

/// Zeros of pointer fields survive (`replicas`, `revisionHistoryLimit`, `runAsUser`,
/// `automountServiceAccountToken`, `allowPrivilegeEscalation`); zeros of Go value fields vanish
/// as in Go's JSON (`minReadySeconds`, `paused`, `hostPort`, `stdin`, `tty`, `hostNetwork`,
/// `status.replicas`), and so do empty optional strings (`workingDir`, `dnsPolicy`, `message`).
#[test]
fn deployment_with_a_full_pod_template() {
    let deployment = apps::v1::Deployment {
        metadata: meta("web", "prod"),
        spec: Some(apps::v1::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: map(&[("app", "web".to_string())]),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("tier"),
                    operator: s("In"),
                    values: strings(&["front", "edge"]),
                }],
            }),
            template: Some(pod_template()),
            strategy: Some(apps::v1::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::v1::RollingUpdateDeployment {
                    max_unavailable: int(0),
                    max_surge: string("25%"),
                }),
            }),
            min_ready_seconds: Some(0),
            revision_history_limit: Some(0),
            paused: Some(false),
            progress_deadline_seconds: Some(600),
        }),
        status: Some(apps::v1::DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(0),
            conditions: vec![apps::v1::DeploymentCondition {
                r#type: s("Available"),
                status: s("True"),
                last_update_time: time(1_700_000_000),
                last_transition_time: time(1_700_000_060),
                reason: s("MinimumReplicasAvailable"),
                message: s(""),
            }],
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {
            "replicas": 0,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}],
            },
            "template": pod_template_json(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "revisionHistoryLimit": 0,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": 2,
            "conditions": [{
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2023-11-14T22:13:20Z",
                "lastTransitionTime": "2023-11-14T22:14:20Z",
                "reason": "MinimumReplicasAvailable",
            }],
        },
    });
    check("apps/v1", "Deployment", &deployment, want);
}

#[test]
fn service_ports_and_target_ports() {
    let service = core::v1::Service {
        metadata: meta("web", "prod"),
        spec: Some(core::v1::ServiceSpec {
            ports: vec![
                core::v1::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: int(8080),
                    node_port: Some(30080),
                    app_protocol: None,
                },
                core::v1::ServicePort {
                    name: s("https"),
                    protocol: s("TCP"),
                    port: Some(443),
                    target_port: string("https"),
                    node_port: Some(0),
                    app_protocol: s("kubernetes.io/h2c"),
                },
            ],
            selector: map(&[("app", "web".to_string())]),
            cluster_ip: s(""),
            cluster_ips: strings(&["10.0.0.10"]),
            r#type: s("NodePort"),
            external_ips: strings(&["192.0.2.1"]),
            session_affinity: s("None"),
            ip_families: strings(&["IPv4"]),
            ip_family_policy: s("SingleStack"),
            ..Default::default()
        }),
        status: Some(core::v1::ServiceStatus {
            load_balancer: Some(core::v1::LoadBalancerStatus { ingress: vec![] }),
            conditions: vec![],
        }),
    };
    check(
        "v1",
        "Service",
        &service,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https", "appProtocol": "kubernetes.io/h2c"},
                ],
                "selector": {"app": "web"},
                "clusterIPs": ["10.0.0.10"],
                "type": "NodePort",
                "externalIPs": ["192.0.2.1"],
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
            },
            "status": {"loadBalancer": {}},
        }),
    );
}

#[test]
fn job_and_cronjob() {
    let job_spec = batch::v1::JobSpec {
        parallelism: Some(1),
        completions: Some(1),
        backoff_limit: Some(0),
        ttl_seconds_after_finished: Some(100),
        template: Some(core::v1::PodTemplateSpec {
            metadata: None,
            spec: Some(core::v1::PodSpec {
                restart_policy: s("Never"),
                containers: vec![core::v1::Container {
                    name: s("main"),
                    image: s("busybox"),
                    command: strings(&["echo", "hi"]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let job_spec_json = json!({
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": 100,
        "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["echo", "hi"]}],
        }},
    });
    let job = batch::v1::Job {
        metadata: meta("once", "default"),
        spec: Some(job_spec.clone()),
        status: None,
    };
    check(
        "batch/v1",
        "Job",
        &job,
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": "default"},
            "spec": job_spec_json.clone(),
        }),
    );
    let cronjob = batch::v1::CronJob {
        metadata: meta("nightly", "default"),
        spec: Some(batch::v1::CronJobSpec {
            schedule: s("0 3 * * *"),
            time_zone: s("Etc/UTC"),
            starting_deadline_seconds: Some(0),
            concurrency_policy: s("Forbid"),
            suspend: Some(false),
            job_template: Some(batch::v1::JobTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    creation_timestamp: Some(meta::Time::default()),
                    ..Default::default()
                }),
                spec: Some(job_spec),
            }),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(1),
        }),
        status: Some(batch::v1::CronJobStatus {
            active: vec![],
            last_schedule_time: time(86_400),
            last_successful_time: None,
        }),
    };
    check(
        "batch/v1",
        "CronJob",
        &cronjob,
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {
                "schedule": "0 3 * * *",
                "timeZone": "Etc/UTC",
                "startingDeadlineSeconds": 0,
                "concurrencyPolicy": "Forbid",
                "suspend": false,
                "jobTemplate": {"metadata": {}, "spec": job_spec_json},
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
            },
            "status": {"lastScheduleTime": "1970-01-02T00:00:00Z"},
        }),
    );
}

#[test]
fn rbac_role_and_cluster_role_binding() {
    let role = rbac::v1::Role {
        metadata: meta("reader", "default"),
        rules: vec![rbac::v1::PolicyRule {
            verbs: strings(&["get", "list"]),
            // The core group is the empty string: list items keep "".
            api_groups: strings(&["", "apps"]),
            resources: strings(&["pods", "deployments"]),
            resource_names: strings(&["web"]),
            non_resource_ur_ls: vec![],
        }],
    };
    check(
        "rbac.authorization.k8s.io/v1",
        "Role",
        &role,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": "default"},
            "rules": [{
                "verbs": ["get", "list"],
                "apiGroups": ["", "apps"],
                "resources": ["pods", "deployments"],
                "resourceNames": ["web"],
            }],
        }),
    );
    let binding = rbac::v1::ClusterRoleBinding {
        metadata: meta("admins", ""),
        subjects: vec![
            rbac::v1::Subject {
                kind: s("User"),
                api_group: s("rbac.authorization.k8s.io"),
                name: s("alice"),
                namespace: s(""),
            },
            rbac::v1::Subject {
                kind: s("ServiceAccount"),
                api_group: s(""),
                name: s("robot"),
                namespace: s("kube-system"),
            },
        ],
        role_ref: Some(rbac::v1::RoleRef {
            api_group: s("rbac.authorization.k8s.io"),
            kind: s("ClusterRole"),
            name: s("cluster-admin"),
        }),
    };
    check(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &binding,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "admins"},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "kube-system"},
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        }),
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("6a4e0c3f-0000-4000-8000-000000000001"),
            resource_version: None,
        }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: strings(&["All"]),
        ignore_store_read_error_with_cluster_breaking_potential: Some(false),
    };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        check(
            api_version,
            "DeleteOptions",
            &opts,
            json!({
                "apiVersion": api_version,
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "6a4e0c3f-0000-4000-8000-000000000001"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
                "ignoreStoreReadErrorWithClusterBreakingPotential": false,
            }),
        );
    }
}

#[test]
fn scale_to_zero() {
    let scale = k8s_pb::api::autoscaling::v1::Scale {
        metadata: meta("web", "prod"),
        spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(0) }),
        status: Some(k8s_pb::api::autoscaling::v1::ScaleStatus {
            replicas: Some(3),
            selector: s("app=web"),
        }),
    };
    check(
        "autoscaling/v1",
        "Scale",
        &scale,
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"replicas": 0},
            "status": {"replicas": 3, "selector": "app=web"},
        }),
    );
}

#[test]
fn pdb_quota_priority_class() {
    let pdb = policy::v1::PodDisruptionBudget {
        metadata: meta("web", "prod"),
        spec: Some(policy::v1::PodDisruptionBudgetSpec {
            min_available: string("50%"),
            selector: Some(meta::LabelSelector {
                match_labels: map(&[("app", "web".to_string())]),
                match_expressions: vec![],
            }),
            max_unavailable: None,
            unhealthy_pod_eviction_policy: s("AlwaysAllow"),
        }),
        status: None,
    };
    check(
        "policy/v1",
        "PodDisruptionBudget",
        &pdb,
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "minAvailable": "50%",
                "selector": {"matchLabels": {"app": "web"}},
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }),
    );
    let quota = core::v1::ResourceQuota {
        metadata: meta("compute", "prod"),
        spec: Some(core::v1::ResourceQuotaSpec {
            hard: map(&[
                ("cpu", quantity("1")),
                ("memory", quantity("1Gi")),
                ("pods", quantity("10")),
                ("services", Quantity { string: None }),
            ]),
            scopes: strings(&["BestEffort"]),
            scope_selector: Some(core::v1::ScopeSelector {
                match_expressions: vec![core::v1::ScopedResourceSelectorRequirement {
                    scope_name: s("PriorityClass"),
                    operator: s("In"),
                    values: strings(&["high"]),
                }],
            }),
        }),
        status: Some(core::v1::ResourceQuotaStatus {
            hard: BTreeMap::new(),
            used: BTreeMap::new(),
        }),
    };
    check(
        "v1",
        "ResourceQuota",
        &quota,
        json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "prod"},
            "spec": {
                "hard": {"cpu": "1", "memory": "1Gi", "pods": "10", "services": "0"},
                "scopes": ["BestEffort"],
                "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]},
            },
            "status": {},
        }),
    );
    let pc = scheduling::v1::PriorityClass {
        metadata: meta("high", ""),
        value: Some(1000),
        global_default: Some(false),
        description: s("important"),
        preemption_policy: s("Never"),
    };
    check(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &pc,
        json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "high"},
            "value": 1000,
            "description": "important",
            "preemptionPolicy": "Never",
        }),
    );
}

#[test]
fn ingress_with_rules_and_tls() {
    let backend = networking::v1::IngressBackend {
        service: Some(networking::v1::IngressServiceBackend {
            name: s("web"),
            port: Some(networking::v1::ServiceBackendPort {
                name: s(""),
                number: Some(8080),
            }),
        }),
        resource: None,
    };
    let ingress = networking::v1::Ingress {
        metadata: meta("web", "prod"),
        spec: Some(networking::v1::IngressSpec {
            ingress_class_name: s("nginx"),
            default_backend: Some(networking::v1::IngressBackend {
                service: None,
                resource: Some(core::v1::TypedLocalObjectReference {
                    api_group: s("example.com"),
                    kind: s("Bucket"),
                    name: s("static"),
                }),
            }),
            tls: vec![networking::v1::IngressTls {
                hosts: strings(&["foo.com"]),
                secret_name: s("my-cert"),
            }],
            rules: vec![networking::v1::IngressRule {
                host: s("foo.com"),
                ingress_rule_value: Some(networking::v1::IngressRuleValue {
                    http: Some(networking::v1::HttpIngressRuleValue {
                        paths: vec![networking::v1::HttpIngressPath {
                            path: s("/bar"),
                            path_type: s("Exact"),
                            backend: Some(backend),
                        }],
                    }),
                }),
            }],
        }),
        status: None,
    };
    check(
        "networking.k8s.io/v1",
        "Ingress",
        &ingress,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "ingressClassName": "nginx",
                "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "static"}},
                "tls": [{"hosts": ["foo.com"], "secretName": "my-cert"}],
                "rules": [{
                    "host": "foo.com",
                    "http": {"paths": [{
                        "path": "/bar",
                        "pathType": "Exact",
                        "backend": {"service": {"name": "web", "port": {"number": 8080}}},
                    }]},
                }],
            },
        }),
    );
}

#[test]
fn lease_micro_times() {
    let lease = coordination::v1::Lease {
        metadata: meta("kube-scheduler", "kube-system"),
        spec: Some(coordination::v1::LeaseSpec {
            holder_identity: s("node-1_abc"),
            lease_duration_seconds: Some(15),
            acquire_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_010),
                nanos: Some(0),
            }),
            lease_transitions: Some(0),
            strategy: None,
            preferred_holder: None,
        }),
    };
    check(
        "coordination.k8s.io/v1",
        "Lease",
        &lease,
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
            "spec": {
                "holderIdentity": "node-1_abc",
                "leaseDurationSeconds": 15,
                "acquireTime": "2023-11-14T22:13:20.123456Z",
                "renewTime": "2023-11-14T22:13:30.000000Z",
                "leaseTransitions": 0,
            },
        }),
    );
}

#[test]
fn raw_extension_and_managed_fields_embed_json() {
    let revision = apps::v1::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("web-1"),
            namespace: s("prod"),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("apps/v1"),
                time: time(0),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                subresource: s(""),
            }],
            ..Default::default()
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{"x":[1,"two",null]}}}"#.to_vec()),
        }),
        revision: Some(1),
    };
    check(
        "apps/v1",
        "ControllerRevision",
        &revision,
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": "web-1",
                "namespace": "prod",
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "1970-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}},
                }],
            },
            "data": {"spec": {"template": {"x": [1, "two", null]}}},
            "revision": 1,
        }),
    );
    let bad = apps::v1::ControllerRevision {
        data: Some(RawExtension {
            raw: Some(b"not json".to_vec()),
        }),
        ..Default::default()
    };
    let err = decode(&body("apps/v1", "ControllerRevision", &bad)).expect_err("bad raw");
    assert!(
        err.to_string()
            .starts_with("ControllerRevision: data: embedded object is not valid JSON"),
        "{err}"
    );
}

#[test]
fn extra_values_are_plain_lists_and_pointer_empty_strings_survive() {
    use k8s_pb::api::authorization::v1 as authz;
    let review = authz::SubjectAccessReview {
        metadata: None,
        spec: Some(authz::SubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("prod"),
                verb: s("get"),
                group: s(""),
                resource: s("pods"),
                ..Default::default()
            }),
            user: s("alice"),
            groups: strings(&["dev"]),
            extra: map(&[(
                "scopes",
                authz::ExtraValue {
                    items: strings(&["a", "b"]),
                },
            )]),
            ..Default::default()
        }),
        status: None,
    };
    check(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &review,
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "resourceAttributes": {"namespace": "prod", "verb": "get", "resource": "pods"},
                "user": "alice",
                "groups": ["dev"],
                "extra": {"scopes": ["a", "b"]},
            },
        }),
    );
    let claim = core::v1::PersistentVolumeClaim {
        metadata: meta("data", "prod"),
        spec: Some(core::v1::PersistentVolumeClaimSpec {
            access_modes: strings(&["ReadWriteOnce"]),
            storage_class_name: s(""),
            resources: Some(core::v1::VolumeResourceRequirements {
                requests: map(&[("storage", quantity("1Gi"))]),
                limits: BTreeMap::new(),
            }),
            ..Default::default()
        }),
        status: None,
    };
    check(
        "v1",
        "PersistentVolumeClaim",
        &claim,
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "prod"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }),
    );
}

#[test]
fn token_request_and_eviction() {
    use k8s_pb::api::authentication::v1 as authn;
    let request = authn::TokenRequest {
        metadata: None,
        spec: Some(authn::TokenRequestSpec {
            audiences: strings(&["https://kubernetes.default.svc"]),
            expiration_seconds: Some(3600),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("web-0"),
                u_id: s("u-1"),
            }),
        }),
        status: Some(authn::TokenRequestStatus {
            token: s(""),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    check(
        "authentication.k8s.io/v1",
        "TokenRequest",
        &request,
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 3600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "u-1"},
            },
            // `token` is required, so Go writes it even when empty.
            "status": {"token": ""},
        }),
    );
    let eviction = policy::v1::Eviction {
        metadata: meta("web-0", "prod"),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        }),
    };
    check(
        "policy/v1",
        "Eviction",
        &eviction,
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "prod"},
            "deleteOptions": {"gracePeriodSeconds": 0},
        }),
    );
}

#[test]
fn raw_extension_may_hold_a_protobuf_object_but_not_endlessly() {
    let ns = core::v1::Namespace {
        metadata: meta("inner", ""),
        ..Default::default()
    };
    let revision = |raw: Vec<u8>| apps::v1::ControllerRevision {
        metadata: meta("rev", "default"),
        data: Some(RawExtension { raw: Some(raw) }),
        revision: Some(2),
    };
    check(
        "apps/v1",
        "ControllerRevision",
        &revision(body("v1", "Namespace", &ns)),
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {"name": "rev", "namespace": "default"},
            "data": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "inner"}},
            "revision": 2,
        }),
    );
    let mut nested = body("v1", "Namespace", &ns);
    for _ in 0..10 {
        nested = body("apps/v1", "ControllerRevision", &revision(nested));
    }
    let err = decode(&nested).expect_err("too deep");
    assert!(
        err.to_string()
            .contains("protobuf objects nested more than 4 deep"),
        "{err}"
    );
}
