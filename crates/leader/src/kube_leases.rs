//! [`LeaseClient`] over kube-rs, for components that talk to the API with a `kube::Client`.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::{LeaseClient, LeaseError};

/// [`LeaseClient`] over kube-rs.
pub struct KubeLeases {
    pub client: Client,
}

fn lease_error(e: kube::Error) -> LeaseError {
    match e {
        kube::Error::Api(s) if s.is_conflict() || s.is_already_exists() => LeaseError::Conflict,
        e => LeaseError::Api(e.to_string()),
    }
}

#[async_trait::async_trait]
impl LeaseClient for KubeLeases {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Lease>, LeaseError> {
        Api::<Lease>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(lease_error)
    }

    async fn create(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        let ns = lease.metadata.namespace.as_deref().unwrap_or("kube-system");
        Api::<Lease>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), lease)
            .await
            .map_err(lease_error)
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, LeaseError> {
        let ns = lease.metadata.namespace.as_deref().unwrap_or("kube-system");
        let name = lease.metadata.name.as_deref().unwrap_or_default();
        Api::<Lease>::namespaced(self.client.clone(), ns)
            .replace(name, &PostParams::default(), lease)
            .await
            .map_err(lease_error)
    }
}
