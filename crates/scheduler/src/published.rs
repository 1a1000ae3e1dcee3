//! The configuration the leading scheduler runs with, published in a ConfigMap so that tools
//! explaining its decisions (`keelson why`) evaluate pods with the same profiles, plugins and
//! weights without being told where the server's `--scheduler-config` file is.
//!
//! The scheduler writes it each time it becomes the leader: with several servers, the ConfigMap
//! always shows the configuration of the one that schedules. An empty text means the defaults.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::config::{ConfigError, SchedulerConfiguration};

/// Where the configuration is published.
pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "keelson-scheduler-config";
/// The data key holding the configuration text.
pub const KEY: &str = "config.yaml";
/// The annotation naming the scheduler (its Lease identity) that published it.
pub const PUBLISHER_ANNOTATION: &str = "keelson.io/scheduler-identity";

/// Writes `text` (the configuration file's contents, or "" for the defaults) as the published
/// configuration of the scheduler `identity`.
pub async fn publish(client: &Client, identity: &str, text: &str) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({
        "metadata": {"annotations": {PUBLISHER_ANNOTATION: identity}},
        "data": {KEY: text},
    });
    match api
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let mut cm: ConfigMap =
                serde_json::from_value(patch.clone()).map_err(kube::Error::SerdeError)?;
            cm.metadata.name = Some(NAME.to_string());
            match api.create(&PostParams::default(), &cm).await {
                Ok(_) => Ok(()),
                // Created meanwhile by another server: ours is the newer term, write again.
                Err(kube::Error::Api(e)) if e.code == 409 => api
                    .patch(NAME, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The published configuration, if any: `Ok(None)` when nothing is published.
pub async fn fetch(
    client: &Client,
) -> Result<Option<(SchedulerConfiguration, String)>, FetchError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let Some(cm) = api.get_opt(NAME).await.map_err(FetchError::Read)? else {
        return Ok(None);
    };
    let publisher = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PUBLISHER_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .map(String::as_str)
        .unwrap_or_default();
    Ok(Some((parse(text).map_err(FetchError::Invalid)?, publisher)))
}

/// A published text as a configuration ("" is the defaults).
pub fn parse(text: &str) -> Result<SchedulerConfiguration, ConfigError> {
    if text.trim().is_empty() {
        Ok(SchedulerConfiguration::default())
    } else {
        SchedulerConfiguration::parse(text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("reading ConfigMap {NAMESPACE}/{NAME}: {0}")]
    Read(kube::Error),
    #[error("ConfigMap {NAMESPACE}/{NAME} does not hold a valid configuration: {0}")]
    Invalid(ConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_defaults_and_bad_text_is_an_error() {
        let d = parse("  \n").unwrap();
        assert_eq!(
            d.profiles.len(),
            SchedulerConfiguration::default().profiles.len()
        );
        let custom = parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n- schedulerName: b\n",
        )
        .unwrap();
        assert_eq!(custom.profiles.len(), 2);
        assert!(parse("kind: [").is_err());
    }
}
