//! The API calls a hollow kubelet makes, one async function per verb. Each is a short
//! sequence of requests with no state of its own: the engine decides what to do, runs one of
//! these in a task, and folds its result back into the node's or pod's state.

use std::net::Ipv4Addr;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};

use crate::config::Config;
use crate::ipam::Addressing;
use crate::objects::{self, PodFacts, PodStage};
use crate::view::{ContainerView, NodeView, PodView};

/// Everything the operations share: one client, the configuration, the addressing plan.
pub(crate) struct Shared {
    pub cfg: Config,
    pub addr: Addressing,
    /// Changes every run, so node boot ids do.
    pub boot: u64,
    pub client: kube::Client,
    pub nodes: Api<Node>,
    pub node_views: Api<NodeView>,
    pub leases: Api<Lease>,
}

impl Shared {
    pub fn new(cfg: Config, addr: Addressing, client: kube::Client) -> Shared {
        Shared {
            cfg,
            addr,
            boot: rand::random(),
            nodes: Api::all(client.clone()),
            node_views: Api::all(client.clone()),
            leases: Api::namespaced(client.clone(), objects::LEASE_NAMESPACE),
            client,
        }
    }
}

/// How an operation failed, as far as the engine cares.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpError {
    /// The object is gone (HTTP 404).
    #[error("not found")]
    NotFound,
    /// A precondition or resourceVersion did not hold, or the object already exists (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The server refused the request as such (400, 403, 422...): retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// Transport errors, timeouts, 429 and 5xx: worth retrying.
    #[error("{0}")]
    Transient(String),
}

impl From<kube::Error> for OpError {
    fn from(e: kube::Error) -> OpError {
        match &e {
            kube::Error::Api(s) => match s.code {
                404 => OpError::NotFound,
                409 => OpError::Conflict(s.message.clone()),
                429 | 500.. => OpError::Transient(format!("{} ({})", s.message, s.code)),
                _ => OpError::Refused(format!("{} ({})", s.message, s.code)),
            },
            _ => OpError::Transient(e.to_string()),
        }
    }
}

fn uid_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

fn rv_of(lease: &Lease) -> String {
    lease.metadata.resource_version.clone().unwrap_or_default()
}

/// What registration learned: the Node's uid and the Lease's resourceVersion.
#[derive(Debug)]
pub(crate) struct Registered {
    pub uid: String,
    pub lease_rv: String,
}

/// Registers node `index` (or adopts it if it already exists, reporting its status), then
/// makes sure its Lease exists and is owned by it.
pub(crate) async fn register(
    shared: Arc<Shared>,
    index: u32,
    since: Timestamp,
) -> Result<Registered, OpError> {
    let s = &*shared;
    let node = objects::node(&s.cfg, &s.addr, index, s.boot, since, Timestamp::now());
    let uid = match s.nodes.create(&PostParams::default(), &node).await {
        Ok(created) => {
            let uid = uid_of(&created.metadata);
            let has_status = created
                .status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|c| !c.is_empty());
            if !has_status {
                report_status(shared.clone(), index, since).await?;
            }
            uid
        }
        Err(e) => match OpError::from(e) {
            // Registered by an earlier run: take it over, as a restarted kubelet does.
            OpError::Conflict(_) => {
                let existing = s.node_views.get(&s.cfg.node_name(index)).await?;
                report_status(shared.clone(), index, since).await?;
                uid_of(&existing.metadata)
            }
            other => return Err(other),
        },
    };
    let lease_rv = renew_lease(shared, index, uid.clone(), None).await?;
    Ok(Registered { uid, lease_rv })
}

/// Renews node `index`'s Lease: a compare-and-swap on the cached `resource_version` when
/// there is one; otherwise (or when that lost) read the Lease and write over the version
/// read, creating it if it is missing. Returns the new resourceVersion.
pub(crate) async fn renew_lease(
    shared: Arc<Shared>,
    index: u32,
    node_uid: String,
    resource_version: Option<String>,
) -> Result<String, OpError> {
    let s = &*shared;
    let name = s.cfg.node_name(index);
    let pp = PostParams::default();
    if let Some(rv) = resource_version {
        let lease = objects::lease(&s.cfg, index, &node_uid, Some(&rv), Timestamp::now());
        match s
            .leases
            .replace(&name, &pp, &lease)
            .await
            .map_err(OpError::from)
        {
            Ok(l) => return Ok(rv_of(&l)),
            Err(OpError::Conflict(_) | OpError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    match s.leases.get_opt(&name).await? {
        Some(current) => {
            let lease = objects::lease(
                &s.cfg,
                index,
                &node_uid,
                Some(&rv_of(&current)),
                Timestamp::now(),
            );
            Ok(rv_of(&s.leases.replace(&name, &pp, &lease).await?))
        }
        None => {
            let lease = objects::lease(&s.cfg, index, &node_uid, None, Timestamp::now());
            Ok(rv_of(&s.leases.create(&pp, &lease).await?))
        }
    }
}

/// Reports node `index`'s full status through nodes/status.
pub(crate) async fn report_status(
    shared: Arc<Shared>,
    index: u32,
    since: Timestamp,
) -> Result<(), OpError> {
    let s = &*shared;
    let status = objects::node_status(&s.cfg, &s.addr, index, s.boot, since, Timestamp::now());
    let patch = serde_json::json!({ "status": status });
    s.node_views
        .patch_status(
            &s.cfg.node_name(index),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// One pod's identity and what its status is built from, owned by the task that writes it.
#[derive(Clone, Debug)]
pub(crate) struct PodJob {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub containers: Arc<[ContainerView]>,
    pub init_containers: Arc<[ContainerView]>,
    pub host_ip: Ipv4Addr,
    pub pod_ip: Option<Ipv4Addr>,
    pub start: Timestamp,
}

impl PodJob {
    fn facts(&self) -> PodFacts<'_> {
        PodFacts {
            uid: &self.uid,
            containers: &self.containers,
            init_containers: &self.init_containers,
            host_ip: self.host_ip,
            pod_ip: self.pod_ip,
            start: self.start,
        }
    }

    async fn write_status(&self, pods: &Api<PodView>, stage: PodStage) -> Result<(), OpError> {
        let status = objects::pod_status(&self.facts(), stage, Timestamp::now());
        let patch = objects::pod_status_patch(&self.uid, &status);
        pods.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

/// Starts a pod: reports it Pending (containers being created), then Running and Ready.
pub(crate) async fn start_pod(shared: Arc<Shared>, job: PodJob) -> Result<(), OpError> {
    let pods: Api<PodView> = Api::namespaced(shared.client.clone(), &job.namespace);
    job.write_status(&pods, PodStage::Pending).await?;
    job.write_status(&pods, PodStage::Running).await
}

/// Finishes a graceful deletion as the kubelet does: report every container terminated, then
/// delete the pod with no further grace, on the condition that it is still the same pod.
pub(crate) async fn terminate_pod(shared: Arc<Shared>, job: PodJob) -> Result<(), OpError> {
    let pods: Api<PodView> = Api::namespaced(shared.client.clone(), &job.namespace);
    job.write_status(&pods, PodStage::Terminated).await?;
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(job.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&job.name, &dp).await.map_err(OpError::from) {
        // Already gone is what the delete was for (a server may remove a terminating pod on
        // its last status write).
        Ok(_) | Err(OpError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
}
