//! Services (`TYPE CLUSTER-IP EXTERNAL-IP PORT(S)`) and Endpoints (`ENDPOINTS`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Endpoints, ServiceSpec};
use serde::Deserialize;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::format;
use crate::table::{Ctx, Printer, Row, TableError, decode, name, s};
use crate::view::Meta;

static SERVICE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Type", doc::<ServiceSpec>("type")),
        Column::string("Cluster-IP", doc::<ServiceSpec>("clusterIP")),
        Column::string("External-IP", doc::<ServiceSpec>("externalIPs")),
        Column::string("Port(s)", doc::<ServiceSpec>("ports")),
        columns::age(),
        Column::string("Selector", doc::<ServiceSpec>("selector")).wide(),
    ])
});

pub(crate) static SERVICE: Printer = Printer {
    columns: &SERVICE_COLUMNS,
    row: service_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct ServiceView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: ServiceSpecView<'a>,
    #[serde(borrow)]
    status: ServiceStatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceSpecView<'a> {
    #[serde(rename = "type")]
    type_: Option<&'a str>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<&'a str>,
    #[serde(rename = "clusterIPs", borrow)]
    cluster_ips: Vec<&'a str>,
    #[serde(rename = "externalIPs", borrow)]
    external_ips: Vec<&'a str>,
    external_name: Option<&'a str>,
    #[serde(borrow)]
    ports: Vec<ServicePortView<'a>>,
    #[serde(borrow)]
    selector: Option<BTreeMap<&'a str, &'a str>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServicePortView<'a> {
    port: i32,
    node_port: Option<i32>,
    protocol: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceStatusView<'a> {
    #[serde(borrow)]
    load_balancer: LoadBalancerView<'a>,
}

/// `status.loadBalancer` of Services and Ingresses.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoadBalancerView<'a> {
    #[serde(borrow)]
    pub(crate) ingress: Vec<LoadBalancerIngressView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoadBalancerIngressView<'a> {
    ip: Option<&'a str>,
    hostname: Option<&'a str>,
}

impl LoadBalancerView<'_> {
    /// Ingress points: IPs, else hostnames, sorted and deduplicated. The server prints wide, so
    /// the list is never clipped to 16 characters (kubectl does not clip either).
    pub(crate) fn points(&self) -> String {
        let mut set = BTreeSet::new();
        for i in &self.ingress {
            if let Some(ip) = i.ip.filter(|ip| !ip.is_empty()) {
                set.insert(ip);
            } else if let Some(h) = i.hostname.filter(|h| !h.is_empty()) {
                set.insert(h);
            }
        }
        set.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn external_ip(spec: &ServiceSpecView<'_>, ty: &str, lb: &LoadBalancerView<'_>) -> String {
    let external = spec.external_ips.as_slice();
    match ty {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb_ips = lb.points();
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb_ips.is_empty() {
                    all.extend(lb_ips.split(','));
                }
                all.extend(external.iter().copied());
                all.join(",")
            } else if lb_ips.is_empty() {
                "<pending>".to_string()
            } else {
                lb_ips
            }
        }
        "ExternalName" => spec.external_name.unwrap_or_default().to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let svc: ServiceView<'_> = decode(obj, "Service")?;
    let spec = &svc.spec;
    // `type` defaults to ClusterIP and port protocols to TCP on the server.
    let ty = spec.type_.unwrap_or("ClusterIP");
    let cluster_ip = spec
        .cluster_ips
        .first()
        .copied()
        .or(spec.cluster_ip)
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let ports: Vec<String> = spec
        .ports
        .iter()
        .map(|p| {
            let proto = p.protocol.unwrap_or("TCP");
            match p.node_port {
                Some(np) if np > 0 => format!("{}:{np}/{proto}", p.port),
                _ => format!("{}/{proto}", p.port),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    Ok(vec![
        name(&svc.metadata),
        s(ty),
        s(cluster_ip),
        s(external_ip(spec, ty, &svc.status.load_balancer)),
        s(ports),
        ctx.age(&svc.metadata),
        s(format::labels(spec.selector.as_ref())),
    ]
    .into())
}

static ENDPOINTS_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Endpoints", doc::<Endpoints>("subsets")),
        columns::age(),
    ])
});

pub(crate) static ENDPOINTS: Printer = Printer {
    columns: &ENDPOINTS_COLUMNS,
    row: endpoints_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct EndpointsView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    subsets: Vec<SubsetView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SubsetView<'a> {
    #[serde(borrow)]
    addresses: Vec<AddressView<'a>>,
    ports: Vec<EndpointPortView>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct AddressView<'a> {
    ip: &'a str,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct EndpointPortView {
    port: i32,
}

/// `formatEndpoints`: up to three `ip:port` (or bare IPs for port-less subsets), then
/// ` + N more...`; `<none>` without subsets.
fn format_endpoints(subsets: &[SubsetView<'_>]) -> String {
    const MAX: usize = 3;
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        if ss.ports.is_empty() {
            // Headless services may have no ports.
            count += ss.addresses.len();
            for a in &ss.addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(a.ip.to_string());
            }
            continue;
        }
        for port in &ss.ports {
            count += ss.addresses.len();
            for a in &ss.addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(format::join_host_port(a.ip, port.port));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

fn endpoints_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let ep: EndpointsView<'_> = decode(obj, "Endpoints")?;
    Ok(vec![
        name(&ep.metadata),
        s(format_endpoints(&ep.subsets)),
        ctx.age(&ep.metadata),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::kinds::testutil::{ago, cells, header_line};

    fn svc(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": ago(45)}, "spec": spec, "status": status})
    }

    #[test]
    fn service_columns() {
        assert_eq!(
            header_line("", "v1", "Service"),
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE [SELECTOR]"
        );
    }

    #[test]
    fn node_port_service() {
        let s = svc(
            json!({"type": "NodePort", "clusterIP": "10.43.0.15", "clusterIPs": ["10.43.0.15"],
                   "selector": {"app": "web"},
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP", "targetPort": 8080},
                             {"port": 443, "protocol": "TCP"}]}),
            json!({}),
        );
        assert_eq!(
            cells("", "v1", "Service", s),
            json!([
                "web",
                "NodePort",
                "10.43.0.15",
                "<none>",
                "80:30080/TCP,443/TCP",
                "45s",
                "app=web"
            ])
        );
    }

    #[test]
    fn cluster_ip_defaults_and_headless() {
        let s = svc(
            json!({"clusterIP": "10.43.0.1", "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}),
            json!({}),
        );
        assert_eq!(
            cells("", "v1", "Service", s),
            json!([
                "web",
                "ClusterIP",
                "10.43.0.1",
                "<none>",
                "53/UDP,53/TCP",
                "45s",
                "<none>"
            ])
        );
        let headless = svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                   "externalIPs": ["1.2.3.4", "5.6.7.8"]}),
            json!({}),
        );
        let c = cells("", "v1", "Service", headless);
        assert_eq!(c[2], "None");
        assert_eq!(c[3], "1.2.3.4,5.6.7.8");
        assert_eq!(c[4], "<none>");
    }

    #[test]
    fn load_balancers_and_external_names() {
        let pending = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.9"],
                   "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
            json!({"loadBalancer": {}}),
        );
        assert_eq!(cells("", "v1", "Service", pending)[3], "<pending>");
        let ready = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.9"], "externalIPs": ["9.9.9.9"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"},
                                                {"hostname": "a-very-long-balancer.example.com"},
                                                {"ip": "203.0.113.10"}]}}),
        );
        assert_eq!(
            cells("", "v1", "Service", ready)[3],
            "203.0.113.10,a-very-long-balancer.example.com,9.9.9.9"
        );
        let external = svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        let c = cells("", "v1", "Service", external);
        assert_eq!(c[2], "<none>");
        assert_eq!(c[3], "db.example.com");
    }

    #[test]
    fn endpoints() {
        assert_eq!(header_line("", "v1", "Endpoints"), "NAME ENDPOINTS AGE");
        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(45)},
            "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}],
                         "ports": [{"port": 8080}, {"port": 8443, "name": "tls"}]}],
        });
        assert_eq!(
            cells("", "v1", "Endpoints", ep),
            json!([
                "web",
                "10.42.0.5:8080,10.42.0.6:8080,10.42.0.5:8443 + 1 more...",
                "45s"
            ])
        );
        let headless = json!({
            "metadata": {"name": "db"},
            "subsets": [{"addresses": [{"ip": "fd00::1"}]},
                        {"addresses": [{"ip": "fd00::2"}], "ports": [{"port": 5432}]}],
        });
        assert_eq!(
            cells("", "v1", "Endpoints", headless)[1],
            "fd00::1,[fd00::2]:5432"
        );
        let none = json!({"metadata": {"name": "x"}});
        assert_eq!(cells("", "v1", "Endpoints", none)[1], "<none>");
        let not_ready = json!({"metadata": {"name": "x"},
                               "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("", "v1", "Endpoints", not_ready)[1], "");
    }
}
