//! Ingresses, IngressClasses, NetworkPolicies and EndpointSlices.

use std::sync::LazyLock;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{IngressClassSpec, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::columns::{self, Column, doc};
use crate::format;
use crate::kinds::service::LoadBalancerView;
use crate::table::{Ctx, Printer, Row, TableError, decode, name, s};
use crate::view::Meta;

static INGRESS_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Class",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column::string(
            "Hosts",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column::string(
            "Address",
            "Address is a list containing ingress points for the load-balancer",
        ),
        Column::string("Ports", "Ports of TLS configurations that open"),
        columns::age(),
    ])
});

pub(crate) static INGRESS: Printer = Printer {
    columns: &INGRESS_COLUMNS,
    row: ingress_row,
};

/// `formatHosts`: up to three hosts, `*` when no rule names one. Once three are listed, every
/// further rule counts towards ` + N more...`, hostless or not, as upstream counts.
fn format_hosts(rules: &[RuleView<'_>]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        match rule.host {
            Some(h) if !more && !h.is_empty() => list.push(h),
            _ => {}
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len().saturating_sub(MAX))
    } else {
        joined
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct IngressView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(borrow)]
    spec: IngressSpecView<'a>,
    #[serde(borrow)]
    status: IngressStatusView<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct IngressSpecView<'a> {
    ingress_class_name: Option<&'a str>,
    #[serde(borrow)]
    rules: Vec<RuleView<'a>>,
    tls: Vec<IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RuleView<'a> {
    host: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct IngressStatusView<'a> {
    #[serde(borrow)]
    load_balancer: LoadBalancerView<'a>,
}

fn ingress_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let ing: IngressView<'_> = decode(obj, "Ingress")?;
    let spec = &ing.spec;
    let class = spec.ingress_class_name.unwrap_or("<none>");
    let ports = if spec.tls.is_empty() { "80" } else { "80, 443" };
    Ok(vec![
        name(&ing.metadata),
        s(class),
        s(format_hosts(&spec.rules)),
        s(ing.status.load_balancer.points()),
        s(ports),
        ctx.age(&ing.metadata),
    ]
    .into())
}

static INGRESS_CLASS_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string(
            "Controller",
            "Controller that is responsible for handling this class",
        ),
        Column::string(
            "Parameters",
            "A reference to a resource with additional parameters",
        ),
        columns::age(),
    ])
});

pub(crate) static INGRESS_CLASS: Printer = Printer {
    columns: &INGRESS_CLASS_COLUMNS,
    row: ingress_class_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct IngressClassView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: IngressClassSpec,
}

fn ingress_class_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let class: IngressClassView<'_> = decode(obj, "IngressClass")?;
    let spec = class.spec;
    let parameters = match &spec.parameters {
        None => "<none>".to_string(),
        Some(p) => match &p.api_group {
            Some(group) => format!("{}.{group}/{}", p.kind, p.name),
            None => format!("{}/{}", p.kind, p.name),
        },
    };
    Ok(vec![
        name(&class.metadata),
        s(spec.controller.unwrap_or_default()),
        s(parameters),
        ctx.age(&class.metadata),
    ]
    .into())
}

static NETWORK_POLICY_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("Pod-Selector", doc::<NetworkPolicySpec>("podSelector")),
        columns::age(),
    ])
});

pub(crate) static NETWORK_POLICY: Printer = Printer {
    columns: &NETWORK_POLICY_COLUMNS,
    row: network_policy_row,
};

#[derive(Default, Deserialize)]
#[serde(default)]
struct NetworkPolicyView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    spec: NetworkPolicySpecView,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NetworkPolicySpecView {
    pod_selector: Option<LabelSelector>,
}

fn network_policy_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    let np: NetworkPolicyView<'_> = decode(obj, "NetworkPolicy")?;
    let selector = np.spec.pod_selector.as_ref();
    Ok(vec![
        name(&np.metadata),
        s(format::label_selector(selector)),
        ctx.age(&np.metadata),
    ]
    .into())
}

static ENDPOINT_SLICE_COLUMNS: LazyLock<Value> = LazyLock::new(|| {
    columns::to_json([
        columns::name(),
        Column::string("AddressType", doc::<EndpointSlice>("addressType")),
        Column::string("Ports", doc::<EndpointSlice>("ports")),
        Column::string("Endpoints", doc::<EndpointSlice>("endpoints")),
        columns::age(),
    ])
});

pub(crate) static ENDPOINT_SLICE: Printer = Printer {
    columns: &ENDPOINT_SLICE_COLUMNS,
    row: endpoint_slice_row,
};

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EndpointSliceView<'a> {
    #[serde(borrow)]
    metadata: Meta<'a>,
    address_type: &'a str,
    #[serde(borrow)]
    ports: Vec<SlicePortView<'a>>,
    #[serde(borrow)]
    endpoints: Vec<SliceEndpointView<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SlicePortView<'a> {
    port: Option<i32>,
    name: Option<&'a str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SliceEndpointView<'a> {
    #[serde(borrow)]
    addresses: Vec<&'a str>,
}

fn endpoint_slice_row(obj: &Value, ctx: &Ctx) -> Result<Row, TableError> {
    const MAX: usize = 3;
    let slice: EndpointSliceView<'_> = decode(obj, "EndpointSlice")?;
    let ports = &slice.ports;
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match (p.port, p.name) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<&str> = slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().copied())
        .collect();
    let address_list: Vec<String> = addresses.iter().take(MAX).map(|a| a.to_string()).collect();
    Ok(vec![
        name(&slice.metadata),
        s(slice.address_type),
        s(format::list_with_more(&port_list, ports.len(), MAX)),
        s(format::list_with_more(&address_list, addresses.len(), MAX)),
        ctx.age(&slice.metadata),
    ]
    .into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::testutil::{ago, cells, header_line};

    #[test]
    fn ingresses() {
        assert_eq!(
            header_line("networking.k8s.io", "v1", "Ingress"),
            "NAME CLASS HOSTS ADDRESS PORTS AGE"
        );
        let ing = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(600)},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.50"}, {"hostname": "lb.example.com"}]}},
        });
        assert_eq!(
            cells("networking.k8s.io", "v1", "Ingress", ing),
            json!([
                "web",
                "nginx",
                "a.example.com,b.example.com",
                "192.168.1.50,lb.example.com",
                "80, 443",
                "10m"
            ])
        );
        let catch_all = json!({"metadata": {"name": "any"},
                               "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "Ingress", catch_all),
            json!(["any", "<none>", "*", "", "80", "<unknown>"])
        );
        let many = json!({"metadata": {"name": "many"},
                          "spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {}]}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "Ingress", many)[2],
            "a,b,c + 3 more..."
        );
    }

    #[test]
    fn ingress_classes() {
        assert_eq!(
            header_line("networking.k8s.io", "v1", "IngressClass"),
            "NAME CONTROLLER PARAMETERS AGE"
        );
        let c = json!({"metadata": {"name": "nginx", "creationTimestamp": ago(5)},
                       "spec": {"controller": "k8s.io/ingress-nginx",
                                "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters",
                                               "name": "external-lb"}}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "IngressClass", c),
            json!([
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "5s"
            ])
        );
        let plain = json!({"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller"}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "IngressClass", plain)[2],
            "<none>"
        );
    }

    #[test]
    fn network_policies() {
        assert_eq!(
            header_line("networking.k8s.io", "v1", "NetworkPolicy"),
            "NAME POD-SELECTOR AGE"
        );
        let deny = json!({"metadata": {"name": "deny-all", "creationTimestamp": ago(5)},
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "NetworkPolicy", deny),
            json!(["deny-all", "<none>", "5s"])
        );
        let db = json!({"metadata": {"name": "db"},
                        "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(
            cells("networking.k8s.io", "v1", "NetworkPolicy", db)[1],
            "role=db"
        );
    }

    #[test]
    fn endpoint_slices() {
        assert_eq!(
            header_line("discovery.k8s.io", "v1", "EndpointSlice"),
            "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"
        );
        let es = json!({
            "metadata": {"name": "web-abc12", "creationTimestamp": ago(5)},
            "addressType": "IPv4",
            "ports": [{"port": 8080, "name": "http"}, {"name": "metrics"}, {}, {"port": 9000}],
            "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6", "10.42.0.7"]},
                          {"addresses": ["10.42.0.8"]}],
        });
        assert_eq!(
            cells("discovery.k8s.io", "v1", "EndpointSlice", es),
            json!([
                "web-abc12",
                "IPv4",
                "8080,metrics,* + 1 more...",
                "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...",
                "5s"
            ])
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv6", "endpoints": []});
        assert_eq!(
            cells("discovery.k8s.io", "v1", "EndpointSlice", empty),
            json!(["e", "IPv6", "<unset>", "<unset>", "<unknown>"])
        );
    }
}
