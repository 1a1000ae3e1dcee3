//! What a Service takes from the pools and gives back: upstream's `allocateCreate` /
//! `allocateUpdate` (cluster IPs, node ports shared by ports of the same number, health-check
//! node ports), and the sets of values an object holds, from which releases are computed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use api::ApiError;
use api::validation::{FieldError, Path};
use k8s_openapi::api::core::v1::Service;

use super::alloc::{Allocator, Ipv4Space, PortSpace, Space, Txn};
use super::fields::*;
use crate::Config;
use crate::core::common::{go, net};

/// The two pools a Service allocates from.
pub struct Pools {
    pub ips: Allocator<Ipv4Space>,
    pub ports: Allocator<PortSpace>,
}

fn invalid(svc: &Service, err: FieldError) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        svc.metadata.name.as_deref().unwrap_or(""),
        vec![err],
    )
}

impl Pools {
    pub fn new(config: &Config) -> Self {
        Pools {
            ips: Allocator::new(Ipv4Space::new(config.service_cidr.0, config.service_cidr.1)),
            ports: Allocator::new(PortSpace::new(config.node_port_range.clone())),
        }
    }

    /// Cluster IPs `svc` holds from the IPv4 pool.
    pub fn held_ips(&self, svc: &Service) -> Vec<Ipv4Addr> {
        if !needs_cluster_ip(svc) {
            return Vec::new();
        }
        cluster_ips(svc)
            .iter()
            .filter_map(|ip| match net::parse_ip(ip) {
                Some(IpAddr::V4(v4)) if self.ips.space().contains(v4) => Some(v4),
                _ => None,
            })
            .collect()
    }

    /// Node ports (including the health-check port) `svc` holds.
    pub fn held_ports(&self, svc: &Service) -> Vec<i32> {
        let mut out: Vec<i32> = Vec::new();
        if needs_node_port(svc) {
            for p in ports(svc) {
                let np = node_port(p);
                if np != 0 && !out.contains(&np) {
                    out.push(np);
                }
            }
        }
        let hc = health_check_node_port(svc);
        if needs_health_check(svc) && hc != 0 && !out.contains(&hc) {
            out.push(hc);
        }
        out
    }

    /// Gives back what `from` holds and `keep` does not.
    pub fn release_difference(&self, from: &Service, keep: Option<&Service>) {
        let keep_ips = keep.map(|k| self.held_ips(k)).unwrap_or_default();
        for ip in self.held_ips(from) {
            if !keep_ips.contains(&ip) {
                self.ips.release(ip);
            }
        }
        let keep_ports = keep.map(|k| self.held_ports(k)).unwrap_or_default();
        for p in self.held_ports(from) {
            if !keep_ports.contains(&p) {
                self.ports.release(p);
            }
        }
    }

    /// Marks what an existing Service holds (server start).
    pub fn observe(&self, svc: &Service) {
        let name = svc.metadata.name.as_deref().unwrap_or("");
        for ip in self.held_ips(svc) {
            if let Err(e) = self.ips.mark(ip) {
                tracing::warn!(service = name, %ip, error = %e, "cluster IP of an existing Service could not be reserved");
            }
        }
        for p in self.held_ports(svc) {
            if !self.ports.space().contains(p) {
                tracing::warn!(
                    service = name,
                    port = p,
                    "node port of an existing Service is outside the configured range"
                );
                continue;
            }
            if let Err(e) = self.ports.mark(p) {
                tracing::warn!(service = name, port = p, error = %e, "node port of an existing Service could not be reserved");
            }
        }
    }

    /// Allocates what `new` needs beyond what `old` already holds and writes the chosen values
    /// into `new`. With `dry_run`, values are chosen but nothing is reserved. On error nothing
    /// stays reserved.
    pub fn allocate(
        &self,
        new: &mut Service,
        old: Option<&Service>,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let mut ip_txn = self.ips.txn(dry_run);
        if let Err(e) = self.allocate_ips(&mut ip_txn, new, old) {
            ip_txn.revert();
            return Err(e);
        }
        let mut port_txn = self.ports.txn(dry_run);
        let result = match old {
            None => create_node_ports(&mut port_txn, new),
            Some(old) => update_node_ports(&mut port_txn, new, old),
        };
        if let Err(e) = result {
            port_txn.revert();
            ip_txn.revert();
            return Err(e);
        }
        Ok(())
    }

    fn allocate_ips(
        &self,
        txn: &mut Txn<'_, Ipv4Space>,
        svc: &mut Service,
        old: Option<&Service>,
    ) -> Result<(), ApiError> {
        if !needs_cluster_ip(svc) || is_headless(svc) {
            return Ok(());
        }
        let held = old.map(|o| self.held_ips(o)).unwrap_or_default();
        for (i, fam) in families(svc).to_vec().iter().enumerate() {
            if fam != IPV4 {
                continue;
            }
            let current = cluster_ips(svc).get(i).cloned().unwrap_or_default();
            let ip = if current.is_empty() {
                txn.allocate_next().map_err(|e| {
                    ApiError::internal(format!("failed to allocate a serviceIP: {e}"))
                })?
            } else {
                let Some(IpAddr::V4(ip)) = net::parse_ip(&current) else {
                    return Err(ApiError::internal(format!(
                        "failed to parse service IP {current:?}"
                    )));
                };
                if held.contains(&ip) {
                    continue;
                }
                txn.allocate(ip).map_err(|e| {
                    invalid(
                        svc,
                        crate::core::common::invalid_raw(
                            Path::new("spec").child("clusterIPs"),
                            go::strings(spec(svc).cluster_ips.as_deref()),
                            format!("failed to allocate IP {current}: {e}"),
                        ),
                    )
                })?;
                continue;
            };
            let spec = spec_mut(svc);
            let ips = spec.cluster_ips.get_or_insert_with(Vec::new);
            if ips.len() <= i {
                ips.resize(i + 1, String::new());
            }
            ips[i] = ip.to_string();
            if i == 0 {
                spec.cluster_ip = Some(ip.to_string());
            }
        }
        Ok(())
    }
}

fn node_port_error(svc: &Service, i: usize, port: i32, e: impl std::fmt::Display) -> ApiError {
    invalid(
        svc,
        FieldError::invalid(
            Path::new("spec").child("ports").index(i).child("nodePort"),
            port,
            e.to_string(),
        ),
    )
}

fn next_port<S: Space<Value = i32>>(txn: &mut Txn<'_, S>) -> Result<i32, ApiError> {
    txn.allocate_next()
        .map_err(|e| ApiError::internal(format!("failed to allocate a nodePort: {e}")))
}

/// Upstream's `initNodePorts` plus the health-check port, for a new Service. Ports with the
/// same number (e.g. TCP and UDP 53) share one node port.
fn create_node_ports(txn: &mut Txn<'_, PortSpace>, svc: &mut Service) -> Result<(), ApiError> {
    if needs_node_port(svc) {
        let allocate_new = should_allocate_node_ports(svc);
        let snapshot = ports(svc).to_vec();
        let mut by_port: HashMap<i32, i32> = HashMap::new();
        for (i, p) in snapshot.iter().enumerate() {
            let np = node_port(p);
            if np == 0 && !allocate_new {
                continue;
            }
            let chosen = match by_port.get(&p.port) {
                None => {
                    let requested = snapshot
                        .iter()
                        .find(|q| q.port == p.port && node_port(q) != 0)
                        .map_or(0, node_port);
                    let v = if requested != 0 {
                        txn.allocate(requested)
                            .map_err(|e| node_port_error(svc, i, requested, e))?;
                        requested
                    } else {
                        next_port(txn)?
                    };
                    by_port.insert(p.port, v);
                    v
                }
                Some(&shared) if np == 0 => shared,
                Some(&shared) if np == shared => shared,
                Some(_) => {
                    txn.allocate(np)
                        .map_err(|e| node_port_error(svc, i, np, e))?;
                    np
                }
            };
            if let Some(port) = spec_mut(svc).ports.as_mut().and_then(|v| v.get_mut(i)) {
                port.node_port = Some(chosen);
            }
        }
    }
    if needs_health_check(svc) {
        health_check_port(txn, svc)?;
    }
    Ok(())
}

fn health_check_port(txn: &mut Txn<'_, PortSpace>, svc: &mut Service) -> Result<(), ApiError> {
    let hc = health_check_node_port(svc);
    if hc != 0 {
        txn.allocate(hc).map_err(|e| {
            ApiError::internal(format!(
                "failed to allocate requested HealthCheck NodePort {hc}: {e}"
            ))
        })
    } else {
        let v = txn.allocate_next().map_err(|e| {
            ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
        })?;
        spec_mut(svc).health_check_node_port = Some(v);
        Ok(())
    }
}

/// Upstream's `updateNodePorts` and `updateHealthCheckNodePort`: only values the old object
/// did not hold are allocated; what it no longer needs is released after the write.
fn update_node_ports(
    txn: &mut Txn<'_, PortSpace>,
    svc: &mut Service,
    old: &Service,
) -> Result<(), ApiError> {
    if needs_node_port(svc) {
        let old_ports: Vec<i32> = ports(old)
            .iter()
            .map(node_port)
            .filter(|&p| p != 0)
            .collect();
        let allocate_new = should_allocate_node_ports(svc);
        let mut taken_here: Vec<i32> = Vec::new();
        for i in 0..ports(svc).len() {
            let np = node_port(&ports(svc)[i]);
            if np == 0 && !allocate_new {
                continue;
            }
            if np != 0 {
                if !old_ports.contains(&np) && !taken_here.contains(&np) {
                    txn.allocate(np)
                        .map_err(|e| node_port_error(svc, i, np, e))?;
                    taken_here.push(np);
                }
            } else {
                let v = next_port(txn)?;
                if let Some(port) = spec_mut(svc).ports.as_mut().and_then(|v| v.get_mut(i)) {
                    port.node_port = Some(v);
                }
            }
        }
    }
    if !needs_health_check(old) && needs_health_check(svc) {
        health_check_port(txn, svc)?;
    }
    Ok(())
}
