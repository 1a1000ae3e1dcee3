//! What to simulate: how many nodes, their names, sizes, labels and taints, and the kubelet
//! timings. [`Config::validate`] refuses anything the API server would refuse later, so a bad
//! flag fails before the first node is registered rather than five thousand times.

use std::collections::BTreeMap;
use std::time::Duration;

use api::quantity::Quantity;
use k8s_openapi::api::core::v1::Taint;

use crate::ipam::Addressing;

/// The taint effects a node may carry (upstream's `validateNodeTaints`).
const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A configuration problem, named after the flag that carries it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what}: {reason}")]
pub struct ConfigError {
    /// The offending setting as the user wrote it, e.g. `--labels "a b=c"`.
    pub what: String,
    pub reason: String,
}

fn bad(what: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        what: what.into(),
        reason: reason.into(),
    }
}

/// The hollow nodes to run and how they behave.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many nodes: `{name_prefix}0` .. `{name_prefix}{nodes-1}`.
    pub nodes: u32,
    pub name_prefix: String,
    /// `pods` capacity of each node; also sizes the node's pod CIDR.
    pub pods_per_node: u32,
    /// `cpu` capacity, a quantity such as `4` or `3500m`.
    pub cpu: String,
    /// `memory` capacity, a quantity such as `16Gi`.
    pub memory: String,
    /// `ephemeral-storage` capacity.
    pub ephemeral_storage: String,
    /// Labels added to the kubelet's own (`kubernetes.io/hostname`, `kubernetes.io/os`, ...).
    pub labels: BTreeMap<String, String>,
    /// Taints the nodes register with (upstream's `--register-with-taints`).
    pub taints: Vec<Taint>,
    /// Most API writes in flight at once, across all nodes.
    pub max_in_flight: usize,
    /// `leaseDurationSeconds` of each node's Lease (upstream: 40 s).
    pub lease_duration: Duration,
    /// How often each Lease is renewed (upstream: a quarter of the duration, 10 s).
    pub lease_renew_interval: Duration,
    /// How often an unchanged node status is reported anyway (upstream's
    /// `nodeStatusReportFrequency`, 5 minutes).
    pub status_report_interval: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            nodes: 1,
            name_prefix: "hollow-".to_string(),
            pods_per_node: 110,
            cpu: "4".to_string(),
            memory: "16Gi".to_string(),
            ephemeral_storage: "100Gi".to_string(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            max_in_flight: 64,
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
        }
    }
}

impl Config {
    /// The name of node `index`.
    pub fn node_name(&self, index: u32) -> String {
        format!("{}{index}", self.name_prefix)
    }

    /// The index of the node called `name`, if it is one of ours. Only the canonical spelling
    /// counts (`hollow-7`, not `hollow-07`), so each index has exactly one name.
    pub fn node_index(&self, name: &str) -> Option<u32> {
        let digits = name.strip_prefix(self.name_prefix.as_str())?;
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return None;
        }
        let index: u32 = digits.parse().ok()?;
        (index < self.nodes).then_some(index)
    }

    /// Checks every setting; the addressing plan the nodes will use on success.
    pub fn validate(&self) -> Result<Addressing, ConfigError> {
        if self.nodes == 0 {
            return Err(bad("--nodes 0", "simulate at least one node"));
        }
        if self.max_in_flight == 0 {
            return Err(bad("max in flight 0", "allow at least one request"));
        }
        if self.lease_renew_interval.is_zero() || self.lease_renew_interval >= self.lease_duration {
            return Err(bad(
                "lease timings",
                "the renew interval must be positive and shorter than the lease duration",
            ));
        }
        if self.lease_duration.as_secs() == 0 || self.status_report_interval.is_zero() {
            return Err(bad(
                "timings",
                "the lease duration must be at least 1 s and the status interval positive",
            ));
        }
        let last = self.node_name(self.nodes - 1);
        let problems = api::validation::dns1123_subdomain(&last);
        if !problems.is_empty() {
            return Err(bad(
                format!("--name-prefix {:?}", self.name_prefix),
                format!("node name {last:?} is not valid: {}", problems.join("; ")),
            ));
        }
        for (flag, value) in [
            ("--cpu", &self.cpu),
            ("--memory", &self.memory),
            ("ephemeral storage", &self.ephemeral_storage),
        ] {
            let q = Quantity::parse(value)
                .map_err(|e| bad(format!("{flag} {value:?}"), e.to_string()))?;
            if q.signum() <= 0 {
                return Err(bad(
                    format!("{flag} {value:?}"),
                    "must be greater than zero",
                ));
            }
        }
        for (k, v) in &self.labels {
            let mut problems = api::validation::qualified_name(k);
            problems.extend(api::validation::label_value(v));
            if !problems.is_empty() {
                return Err(bad(format!("--labels {k}={v}"), problems.join("; ")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.taints {
            let shown = format!(
                "--taints {}={}:{}",
                t.key,
                t.value.as_deref().unwrap_or(""),
                t.effect
            );
            let mut problems = api::validation::qualified_name(&t.key);
            problems.extend(api::validation::label_value(
                t.value.as_deref().unwrap_or(""),
            ));
            if !EFFECTS.contains(&t.effect.as_str()) {
                problems.push(format!("the effect must be one of {}", EFFECTS.join(", ")));
            }
            if !seen.insert((t.key.as_str(), t.effect.as_str())) {
                problems.push("taints must be unique by key and effect".to_string());
            }
            if !problems.is_empty() {
                return Err(bad(shown, problems.join("; ")));
            }
        }
        Addressing::new(self.nodes, self.pods_per_node)
    }
}

/// Parses `k=v,k2=v2` (as `kubectl label` and `--node-labels` take them).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut labels = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(bad(
                format!("--labels {item:?}"),
                "write each label as key=value",
            ));
        };
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(labels)
}

/// Parses `k=v:Effect,k:Effect` (as the kubelet's `--register-with-taints` takes them).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, ConfigError> {
    let mut taints = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((kv, effect)) = item.rsplit_once(':') else {
            return Err(bad(
                format!("--taints {item:?}"),
                "write each taint as key=value:Effect or key:Effect",
            ));
        };
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        taints.push(Taint {
            key: key.to_string(),
            value,
            effect: effect.to_string(),
            time_added: None,
        });
    }
    Ok(taints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn node_names_round_trip_and_foreign_names_are_not_ours() {
        let cfg = Config {
            nodes: 20,
            ..Config::default()
        };
        for i in [0, 7, 19] {
            assert_eq!(cfg.node_index(&cfg.node_name(i)), Some(i));
        }
        for name in [
            "hollow-20",
            "hollow-07",
            "hollow-",
            "hollow--1",
            "hollow-1a",
            "node-1",
            "",
            "hollow-99999999999999",
        ] {
            assert_eq!(cfg.node_index(name), None, "{name}");
        }
    }

    #[test]
    fn labels_parse() {
        // (input, the labels it parses to, or None for an error)
        type Case<'a> = (&'a str, Option<Vec<(&'a str, &'a str)>>);
        let cases: &[Case] = &[
            ("", Some(vec![])),
            ("a=b", Some(vec![("a", "b")])),
            (
                "zone=z1, tier=web,",
                Some(vec![("tier", "web"), ("zone", "z1")]),
            ),
            ("empty=", Some(vec![("empty", "")])),
            ("novalue", None),
        ];
        for (input, want) in cases {
            let got = parse_labels(input);
            match want {
                Some(pairs) => {
                    let want: BTreeMap<String, String> = pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(got, Ok(want), "{input}");
                }
                None => assert!(got.is_err(), "{input}"),
            }
        }
    }

    #[test]
    fn taints_parse() {
        let cases: &[(&str, Option<Vec<Taint>>)] = &[
            (
                "dedicated=gpu:NoSchedule",
                Some(vec![taint("dedicated", Some("gpu"), "NoSchedule")]),
            ),
            (
                "a:NoExecute,b=:PreferNoSchedule",
                Some(vec![
                    taint("a", None, "NoExecute"),
                    taint("b", Some(""), "PreferNoSchedule"),
                ]),
            ),
            (
                "example.com/k=v:NoSchedule",
                Some(vec![taint("example.com/k", Some("v"), "NoSchedule")]),
            ),
            ("no-effect", None),
        ];
        for (input, want) in cases {
            match want {
                Some(t) => assert_eq!(parse_taints(input).as_ref(), Ok(t), "{input}"),
                None => assert!(parse_taints(input).is_err(), "{input}"),
            }
        }
    }

    #[test]
    fn validation_refuses_what_the_server_would() {
        type Edit = fn(&mut Config);
        let cases: &[(&str, Edit, Option<&str>)] = &[
            ("defaults", |_| {}, None),
            ("no nodes", |c| c.nodes = 0, Some("--nodes 0")),
            (
                "bad prefix",
                |c| c.name_prefix = "Hollow_".into(),
                Some("--name-prefix"),
            ),
            ("bad cpu", |c| c.cpu = "four".into(), Some("--cpu")),
            ("zero memory", |c| c.memory = "0".into(), Some("--memory")),
            (
                "bad label key",
                |c| {
                    c.labels.insert("a b".into(), "c".into());
                },
                Some("--labels a b=c"),
            ),
            (
                "bad label value",
                |c| {
                    c.labels.insert("a".into(), "-x-".into());
                },
                Some("--labels a=-x-"),
            ),
            (
                "bad effect",
                |c| c.taints = vec![taint("k", Some("v"), "Never")],
                Some("--taints k=v:Never"),
            ),
            (
                "duplicate taint",
                |c| {
                    c.taints = vec![
                        taint("k", Some("v"), "NoSchedule"),
                        taint("k", Some("w"), "NoSchedule"),
                    ]
                },
                Some("unique"),
            ),
            (
                "renew slower than the lease",
                |c| c.lease_renew_interval = Duration::from_secs(60),
                Some("lease timings"),
            ),
            (
                "too many pods for a node's share of 10.0.0.0/8",
                |c| {
                    c.nodes = 300;
                    c.pods_per_node = 60_000;
                },
                Some("pod addresses"),
            ),
        ];
        for (name, edit, want) in cases {
            let mut cfg = Config::default();
            edit(&mut cfg);
            match (cfg.validate(), want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want error containing {want:?}"),
            }
        }
    }
}
