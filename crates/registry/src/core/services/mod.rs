//! Services: upstream's defaults, validation and the REST-storage work around them —
//! cluster IPs from `Config::service_cidr` and node ports from `Config::node_port_range`,
//! reserved right before the write ([`Strategy::before_write`]), given back when a write fails
//! (`rollback_write`), when an update stops using them (`after_write`) and on delete
//! (`after_delete`), and rebuilt from stored Services at startup (`observe_existing`).
//!
//! Order of work, matching upstream's observable behaviour: defaults → (update: keep allocated
//! values the client left out, sync `clusterIP`/`clusterIPs`, drop fields the new type cannot
//! use) → IP-family defaults → validation → allocation.

// `ApiError` is the API's single error type and every caller (including the `Strategy`
// contract) takes it by value; boxing it here would only add an allocation.
#![allow(clippy::result_large_err)]

mod alloc;
mod allocate;
mod families;
mod fields;
mod validation;

pub use alloc::{AllocError, Allocator, Ipv4Space, PortSpace};

use std::sync::Arc;

use api::ApiError;
use api::resources::ResourceInfo;
use api::validation::FieldError;
use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use allocate::Pools;
use fields::*;

use crate::strategy::{Adapter, NameValidation, Strategy};
use crate::{Config, DynStrategy};

/// Upstream's `DefaultClientIPServiceAffinitySeconds`.
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

pub fn strategy(info: &'static ResourceInfo, config: &Config) -> Arc<dyn DynStrategy> {
    Arc::new(Adapter::new(info, Services::new(config)))
}

/// The Service strategy and its allocation pools.
pub struct Services {
    pools: Pools,
}

impl Services {
    pub fn new(config: &Config) -> Self {
        Services {
            pools: Pools::new(config),
        }
    }
}

/// Load-balancer ingress points with an IP default to `ipMode: VIP`.
fn default_ip_mode(svc: &mut Service) {
    let ingress = svc
        .status
        .as_mut()
        .and_then(|s| s.load_balancer.as_mut())
        .and_then(|lb| lb.ingress.as_mut());
    for ing in ingress.into_iter().flatten() {
        if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && ing.ip_mode.is_none() {
            ing.ip_mode = Some("VIP".to_string());
        }
    }
}

impl Strategy for Services {
    type Object = Service;

    fn name_validation(&self) -> NameValidation {
        NameValidation::Dns1035Label
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn set_defaults(&self, svc: &mut Service) {
        let is_load_balancer = {
            let s = spec_mut(svc);
            if s.session_affinity.as_deref().unwrap_or("").is_empty() {
                s.session_affinity = Some("None".to_string());
            }
            match s.session_affinity.as_deref() {
                Some("None") => s.session_affinity_config = None,
                Some("ClientIP") => {
                    let has_timeout = s
                        .session_affinity_config
                        .as_ref()
                        .and_then(|c| c.client_ip.as_ref())
                        .is_some_and(|c| c.timeout_seconds.is_some());
                    if !has_timeout {
                        s.session_affinity_config = Some(SessionAffinityConfig {
                            client_ip: Some(ClientIPConfig {
                                timeout_seconds: Some(DEFAULT_AFFINITY_SECONDS),
                            }),
                        });
                    }
                }
                _ => {}
            }
            if s.type_.as_deref().unwrap_or("").is_empty() {
                s.type_ = Some(CLUSTER_IP.to_string());
            }
            for p in s.ports.iter_mut().flatten() {
                if p.protocol.as_deref().unwrap_or("").is_empty() {
                    p.protocol = Some("TCP".to_string());
                }
                let unset = match &p.target_port {
                    None | Some(IntOrString::Int(0)) => true,
                    Some(IntOrString::String(s)) => s.is_empty(),
                    Some(IntOrString::Int(_)) => false,
                };
                if unset {
                    p.target_port = Some(IntOrString::Int(p.port));
                }
            }
            let ty = s.type_.as_deref().unwrap_or("");
            if matches!(ty, NODE_PORT | LOAD_BALANCER | CLUSTER_IP)
                && s.internal_traffic_policy.is_none()
            {
                s.internal_traffic_policy = Some("Cluster".to_string());
            }
            if ty == LOAD_BALANCER && s.allocate_load_balancer_node_ports.is_none() {
                s.allocate_load_balancer_node_ports = Some(true);
            }
            ty == LOAD_BALANCER
        };
        if externally_accessible(svc) && external_traffic_policy(svc).is_empty() {
            spec_mut(svc).external_traffic_policy = Some("Cluster".to_string());
        }
        if is_load_balancer {
            default_ip_mode(svc);
        }
    }

    fn prepare_for_create(&self, svc: &mut Service) {
        svc.status = Some(ServiceStatus {
            conditions: None,
            load_balancer: Some(LoadBalancerStatus::default()),
        });
        families::normalize_cluster_ips(svc, None);
        families::init_ip_families(svc, None);
    }

    fn prepare_for_update(&self, new: &mut Service, old: &Service) {
        families::patch_allocated_values(new, old);
        families::normalize_cluster_ips(new, Some(old));
        families::drop_type_dependent_fields(new, old);
        families::init_ip_families(new, Some(old));
    }

    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        let mut errs = validation::validate(svc);
        errs.extend(families::family_errors(svc, None));
        errs
    }

    fn validate_update(&self, new: &Service, old: &Service) -> Vec<FieldError> {
        let mut errs = validation::validate_update(new, old);
        errs.extend(families::family_errors(new, Some(old)));
        errs
    }

    fn prepare_for_status_update(&self, new: &mut Service, _old: &Service) {
        // Upstream defaults the whole body of a status write; load-balancer controllers rely
        // on `ipMode` being filled in for them.
        if type_(new) == LOAD_BALANCER {
            default_ip_mode(new);
        }
    }

    fn validate_status_update(&self, new: &Service, _old: &Service) -> Vec<FieldError> {
        validation::validate_status(new)
    }

    fn before_write(
        &self,
        new: &mut Service,
        old: Option<&Service>,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        self.pools.allocate(new, old, dry_run)
    }

    fn rollback_write(&self, new: &Service, old: Option<&Service>) {
        self.pools.release_difference(new, old);
    }

    fn after_write(&self, new: &Service, old: Option<&Service>) {
        if let Some(old) = old {
            self.pools.release_difference(old, Some(new));
        }
    }

    fn after_delete(&self, svc: &Service) {
        self.pools.release_difference(svc, None);
    }

    const OBSERVES_EXISTING: bool = true;

    fn observe_existing(&self, svc: &Service) {
        self.pools.observe(svc);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests;
