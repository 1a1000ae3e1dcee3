//! The scheduler's configuration file: upstream's `KubeSchedulerConfiguration`
//! (`kubescheduler.config.k8s.io/v1`), in YAML or JSON.
//!
//! Parsing is strict like upstream's: unknown fields, a wrong `apiVersion`/`kind` and invalid
//! values are errors that name the field (`profiles[0].plugins.score.enabled[1]: ...`).
//! Each profile's plugins are merged with the v1 defaults exactly as upstream's defaulting does
//! (`mergePlugins`): per extension point, the defaults stay in their order unless disabled
//! (`"*"` disables them all), a default the user enables again is replaced in place (taking the
//! user's weight), and the user's other plugins are appended. Expanding `multiPoint` into the
//! extension points happens when the framework is built ([`crate::profile::Framework::new`]).
//!
//! Plugin names are checked against a [`Registry`] by [`SchedulerConfiguration::validate_plugins`]
//! (the registry may hold out-of-tree plugins, so parsing alone cannot know every name).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::registry::Registry;

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// 0: the adaptive percentage (`50 - nodes/125`, at least 5%).
pub const DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE: u32 = 0;
pub const DEFAULT_POD_INITIAL_BACKOFF_SECONDS: u64 = 1;
pub const DEFAULT_POD_MAX_BACKOFF_SECONDS: u64 = 10;
pub const DEFAULT_PARALLELISM: u32 = 16;

/// The queue-sort plugin; keelson's scheduling queue implements it itself.
pub const PRIORITY_SORT: &str = "PrioritySort";
/// The PreEnqueue plugin holding back pods with `spec.schedulingGates`; also built into the
/// queue.
pub const SCHEDULING_GATES: &str = "SchedulingGates";

/// Upstream in-tree plugins keelson does not implement: enabling one is an error that says so,
/// disabling one is a no-op (configurations written for upstream often disable them).
const UNSUPPORTED_UPSTREAM_PLUGINS: &[&str] = &[
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeZone",
    "DynamicResources",
    "NodeDeclaredFeatures",
    "GangScheduling",
];

/// Upstream's v1.33 default plugins (all in `multiPoint`), in upstream's order, with their
/// score weights (0: not a score plugin, or weight 1). `PrioritySort`, `SchedulingGates` and
/// the volume plugins keelson lacks are left out: the queue implements the first two.
pub const DEFAULT_MULTI_POINT: &[(&str, i32)] = &[
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeBinding", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading scheduler configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing scheduler configuration: {0}")]
    Parse(String),
    /// `field` is the path of the offending field, e.g. `profiles[0].schedulerName`.
    #[error("invalid scheduler configuration: {field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The extension points a profile configures, with their v1 field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtensionPoint {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    PostBind,
    Bind,
}

impl ExtensionPoint {
    /// Every point except `multiPoint`, in upstream's order.
    pub const ALL: [ExtensionPoint; 12] = [
        ExtensionPoint::PreEnqueue,
        ExtensionPoint::QueueSort,
        ExtensionPoint::PreFilter,
        ExtensionPoint::Filter,
        ExtensionPoint::PostFilter,
        ExtensionPoint::PreScore,
        ExtensionPoint::Score,
        ExtensionPoint::Reserve,
        ExtensionPoint::Permit,
        ExtensionPoint::PreBind,
        ExtensionPoint::PostBind,
        ExtensionPoint::Bind,
    ];

    /// The field name in `plugins` (`preFilter`, ...).
    pub fn field(self) -> &'static str {
        match self {
            ExtensionPoint::PreEnqueue => "preEnqueue",
            ExtensionPoint::QueueSort => "queueSort",
            ExtensionPoint::PreFilter => "preFilter",
            ExtensionPoint::Filter => "filter",
            ExtensionPoint::PostFilter => "postFilter",
            ExtensionPoint::PreScore => "preScore",
            ExtensionPoint::Score => "score",
            ExtensionPoint::Reserve => "reserve",
            ExtensionPoint::Permit => "permit",
            ExtensionPoint::PreBind => "preBind",
            ExtensionPoint::PostBind => "postBind",
            ExtensionPoint::Bind => "bind",
        }
    }
}

impl fmt::Display for ExtensionPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// One enabled plugin; `weight` only matters for Score (0 means 1).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: i32,
}

/// A disabled plugin (only the name; `"*"` disables every default).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisabledRef {
    name: String,
    /// Upstream's type has a weight field on disabled entries too; it is meaningless there.
    #[serde(default)]
    #[allow(dead_code)]
    weight: i32,
}

/// The plugins of one extension point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginSet {
    pub enabled: Vec<PluginRef>,
    pub disabled: Vec<String>,
}

impl PluginSet {
    pub fn disables(&self, name: &str) -> bool {
        self.disabled.iter().any(|d| d == name)
    }

    pub fn disables_all(&self) -> bool {
        self.disables("*")
    }
}

/// A profile's plugins per extension point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plugins {
    pub multi_point: PluginSet,
    pub points: BTreeMap<ExtensionPoint, PluginSet>,
}

impl Plugins {
    /// The set of `point` (empty if none configured).
    pub fn get(&self, point: ExtensionPoint) -> &PluginSet {
        static EMPTY: PluginSet = PluginSet {
            enabled: Vec::new(),
            disabled: Vec::new(),
        };
        self.points.get(&point).unwrap_or(&EMPTY)
    }

    /// Upstream's v1 defaults: everything in `multiPoint`.
    pub fn defaults() -> Plugins {
        Plugins {
            multi_point: PluginSet {
                enabled: DEFAULT_MULTI_POINT
                    .iter()
                    .map(|(name, weight)| PluginRef {
                        name: name.to_string(),
                        weight: *weight,
                    })
                    .collect(),
                disabled: Vec::new(),
            },
            points: BTreeMap::new(),
        }
    }

    /// `custom` merged over `self` (the defaults), per extension point, as upstream's
    /// `mergePlugins`.
    pub fn merged_with(&self, custom: &Plugins) -> Plugins {
        let mut out = Plugins {
            multi_point: merge_plugin_set(&self.multi_point, &custom.multi_point),
            points: BTreeMap::new(),
        };
        for point in ExtensionPoint::ALL {
            let merged = merge_plugin_set(self.get(point), custom.get(point));
            if merged != PluginSet::default() {
                out.points.insert(point, merged);
            }
        }
        out
    }
}

/// Upstream's `mergePluginSet`: the defaults in order minus the disabled ones (all of them for
/// `"*"`), each replaced in place by the user's entry of the same name; then the user's other
/// plugins. The disabled lists are kept so that `multiPoint` expansion can honour them.
fn merge_plugin_set(defaults: &PluginSet, custom: &PluginSet) -> PluginSet {
    let mut disabled: Vec<String> = custom.disabled.clone();
    disabled.extend(defaults.disabled.iter().cloned());
    let disabled_set: BTreeSet<&str> = disabled.iter().map(String::as_str).collect();
    let mut replaced = BTreeSet::new();
    let mut enabled = Vec::new();
    if !disabled_set.contains("*") {
        for d in &defaults.enabled {
            if disabled_set.contains(d.name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    tracing::debug!(plugin = %d.name, "default plugin explicitly re-configured");
                    replaced.insert(i);
                    enabled.push(custom.enabled[i].clone());
                }
                None => enabled.push(d.clone()),
            }
        }
    }
    for (i, c) in custom.enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            enabled.push(c.clone());
        }
    }
    PluginSet { enabled, disabled }
}

/// One scheduling profile (`profiles[]`), with its plugins merged with the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    /// Overrides the global percentage for this profile.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Merged with the defaults.
    pub plugins: Plugins,
    /// What the user wrote (for error messages that point at the file).
    pub user_plugins: Plugins,
    /// Args by plugin name.
    pub plugin_config: BTreeMap<String, serde_json::Value>,
}

impl Profile {
    /// A profile with the default plugins.
    pub fn new(scheduler_name: &str) -> Profile {
        Profile {
            scheduler_name: scheduler_name.to_string(),
            percentage_of_nodes_to_score: None,
            plugins: Plugins::defaults(),
            user_plugins: Plugins::default(),
            plugin_config: BTreeMap::new(),
        }
    }
}

/// `leaderElection` (upstream's `LeaderElectionConfiguration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    pub leader_elect: bool,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    pub resource_lock: String,
    pub resource_name: String,
    pub resource_namespace: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            leader_elect: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            resource_lock: "leases".to_string(),
            resource_name: "kube-scheduler".to_string(),
            resource_namespace: "kube-system".to_string(),
        }
    }
}

/// The whole configuration, defaulted and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfiguration {
    pub parallelism: u32,
    /// 0: adaptive.
    pub percentage_of_nodes_to_score: u32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    pub leader_election: LeaderElection,
    pub profiles: Vec<Profile>,
}

impl Default for SchedulerConfiguration {
    /// One `default-scheduler` profile with the default plugins.
    fn default() -> Self {
        SchedulerConfiguration {
            parallelism: DEFAULT_PARALLELISM,
            percentage_of_nodes_to_score: DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE,
            pod_initial_backoff: Duration::from_secs(DEFAULT_POD_INITIAL_BACKOFF_SECONDS),
            pod_max_backoff: Duration::from_secs(DEFAULT_POD_MAX_BACKOFF_SECONDS),
            leader_election: LeaderElection::default(),
            profiles: vec![Profile::new(DEFAULT_SCHEDULER_NAME)],
        }
    }
}

// ---- the wire shape ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    parallelism: Option<i64>,
    leader_election: Option<RawLeaderElection>,
    client_connection: Option<RawClientConnection>,
    enable_profiling: Option<bool>,
    enable_contention_profiling: Option<bool>,
    percentage_of_nodes_to_score: Option<i64>,
    pod_initial_backoff_seconds: Option<i64>,
    pod_max_backoff_seconds: Option<i64>,
    profiles: Option<Vec<RawProfile>>,
    extenders: Option<Vec<serde_yaml::Value>>,
    delay_cache_until_active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLeaderElection {
    leader_elect: Option<bool>,
    lease_duration: Option<String>,
    renew_deadline: Option<String>,
    retry_period: Option<String>,
    resource_lock: Option<String>,
    resource_name: Option<String>,
    resource_namespace: Option<String>,
}

/// Accepted for compatibility; keelson's scheduler talks to the API in-process.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RawClientConnection {
    kubeconfig: Option<String>,
    accept_content_types: Option<String>,
    content_type: Option<String>,
    qps: Option<f64>,
    burst: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    plugins: Option<RawPlugins>,
    plugin_config: Option<Vec<RawPluginConfig>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlugins {
    pre_enqueue: Option<RawPluginSet>,
    queue_sort: Option<RawPluginSet>,
    pre_filter: Option<RawPluginSet>,
    filter: Option<RawPluginSet>,
    post_filter: Option<RawPluginSet>,
    pre_score: Option<RawPluginSet>,
    score: Option<RawPluginSet>,
    reserve: Option<RawPluginSet>,
    permit: Option<RawPluginSet>,
    pre_bind: Option<RawPluginSet>,
    post_bind: Option<RawPluginSet>,
    bind: Option<RawPluginSet>,
    multi_point: Option<RawPluginSet>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPluginSet {
    enabled: Option<Vec<PluginRef>>,
    disabled: Option<Vec<DisabledRef>>,
}

impl RawPluginSet {
    fn into_set(self) -> PluginSet {
        PluginSet {
            enabled: self.enabled.unwrap_or_default(),
            disabled: self
                .disabled
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.name)
                .collect(),
        }
    }
}

impl RawPlugins {
    fn into_plugins(self) -> Plugins {
        let mut points = BTreeMap::new();
        let sets = [
            (ExtensionPoint::PreEnqueue, self.pre_enqueue),
            (ExtensionPoint::QueueSort, self.queue_sort),
            (ExtensionPoint::PreFilter, self.pre_filter),
            (ExtensionPoint::Filter, self.filter),
            (ExtensionPoint::PostFilter, self.post_filter),
            (ExtensionPoint::PreScore, self.pre_score),
            (ExtensionPoint::Score, self.score),
            (ExtensionPoint::Reserve, self.reserve),
            (ExtensionPoint::Permit, self.permit),
            (ExtensionPoint::PreBind, self.pre_bind),
            (ExtensionPoint::PostBind, self.post_bind),
            (ExtensionPoint::Bind, self.bind),
        ];
        for (point, set) in sets {
            if let Some(set) = set {
                points.insert(point, set.into_set());
            }
        }
        Plugins {
            multi_point: self.multi_point.unwrap_or_default().into_set(),
            points,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginConfig {
    name: String,
    args: Option<serde_json::Value>,
}

impl SchedulerConfiguration {
    /// Reads, parses, defaults and validates a configuration file (YAML or JSON).
    pub fn load(path: impl AsRef<Path>) -> Result<SchedulerConfiguration, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SchedulerConfiguration::parse(&text)
    }

    /// Parses, defaults and validates a configuration (YAML or JSON text).
    pub fn parse(text: &str) -> Result<SchedulerConfiguration, ConfigError> {
        let raw: RawConfig =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        SchedulerConfiguration::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<SchedulerConfiguration, ConfigError> {
        match raw.api_version.as_deref() {
            Some(API_VERSION) => {}
            None | Some("") => {
                return Err(invalid(
                    "apiVersion",
                    "must be set to \"kubescheduler.config.k8s.io/v1\"",
                ));
            }
            Some(other) => {
                return Err(invalid(
                    "apiVersion",
                    format!("unsupported version {other:?}: keelson reads \"{API_VERSION}\" only"),
                ));
            }
        }
        match raw.kind.as_deref() {
            Some(KIND) => {}
            other => {
                return Err(invalid(
                    "kind",
                    format!("must be \"{KIND}\", not {:?}", other.unwrap_or_default()),
                ));
            }
        }
        let mut config = SchedulerConfiguration::default();
        if let Some(p) = raw.parallelism {
            config.parallelism = u32::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                invalid(
                    "parallelism",
                    format!("Invalid value: {p}: should be an integer value greater than zero"),
                )
            })?;
        }
        if let Some(p) = raw.percentage_of_nodes_to_score {
            config.percentage_of_nodes_to_score = percentage("percentageOfNodesToScore", p)?;
        }
        let initial = raw
            .pod_initial_backoff_seconds
            .unwrap_or(DEFAULT_POD_INITIAL_BACKOFF_SECONDS as i64);
        if initial <= 0 {
            return Err(invalid(
                "podInitialBackoffSeconds",
                format!("Invalid value: {initial}: must be greater than 0"),
            ));
        }
        let max = raw
            .pod_max_backoff_seconds
            .unwrap_or(DEFAULT_POD_MAX_BACKOFF_SECONDS as i64);
        if max < initial {
            return Err(invalid(
                "podMaxBackoffSeconds",
                format!(
                    "Invalid value: {max}: must be greater than or equal to PodInitialBackoffSeconds"
                ),
            ));
        }
        config.pod_initial_backoff = Duration::from_secs(initial.unsigned_abs());
        config.pod_max_backoff = Duration::from_secs(max.unsigned_abs());
        if let Some(le) = raw.leader_election {
            config.leader_election = leader_election(le)?;
        }
        if raw.client_connection.is_some() {
            tracing::info!(
                "scheduler configuration: clientConnection is ignored (the scheduler uses keelson's in-process client)"
            );
        }
        if raw.enable_profiling.is_some()
            || raw.enable_contention_profiling.is_some()
            || raw.delay_cache_until_active.is_some()
        {
            tracing::debug!(
                "scheduler configuration: enableProfiling, enableContentionProfiling and delayCacheUntilActive are accepted and ignored"
            );
        }
        if raw.extenders.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(invalid(
                "extenders",
                "scheduler extenders are not supported by keelson; use plugins",
            ));
        }
        if let Some(profiles) = raw.profiles {
            if profiles.is_empty() {
                return Err(invalid("profiles", "Required value"));
            }
            config.profiles = profiles
                .into_iter()
                .enumerate()
                .map(|(i, p)| profile(i, p))
                .collect::<Result<_, _>>()?;
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in config.profiles.iter().enumerate() {
            if let Some(first) = seen.insert(&p.scheduler_name, i) {
                return Err(invalid(
                    format!("profiles[{i}].schedulerName"),
                    format!(
                        "Duplicate value: {:?} (also profiles[{first}].schedulerName)",
                        p.scheduler_name
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// Checks every plugin name the user wrote against `registry`: enabling an unknown plugin,
    /// enabling a plugin at a point that keelson implements in the queue, or configuring args
    /// for an unknown plugin is an error naming the field.
    pub fn validate_plugins(&self, registry: &Registry) -> Result<(), ConfigError> {
        for (pi, profile) in self.profiles.iter().enumerate() {
            let base = format!("profiles[{pi}].plugins");
            let sets = std::iter::once(("multiPoint", &profile.user_plugins.multi_point)).chain(
                profile
                    .user_plugins
                    .points
                    .iter()
                    .map(|(point, set)| (point.field(), set)),
            );
            for (field, set) in sets {
                for (i, p) in set.enabled.iter().enumerate() {
                    let at = format!("{base}.{field}.enabled[{i}]");
                    check_enabled(registry, field, &p.name, &at)?;
                    if p.weight < 0 {
                        return Err(invalid(
                            format!("{at}.weight"),
                            format!("Invalid value: {}: must not be negative", p.weight),
                        ));
                    }
                }
                for (i, name) in set.disabled.iter().enumerate() {
                    if name != "*" && !is_known(registry, name) {
                        return Err(invalid(
                            format!("{base}.{field}.disabled[{i}].name"),
                            format!("unknown plugin {name:?}"),
                        ));
                    }
                }
            }
            for (name, _) in profile.plugin_config.iter() {
                if !registry.contains(name) && name != PRIORITY_SORT && name != SCHEDULING_GATES {
                    return Err(invalid(
                        format!("profiles[{pi}].pluginConfig"),
                        format!("args for unknown plugin {name:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_known(registry: &Registry, name: &str) -> bool {
    registry.contains(name)
        || name == PRIORITY_SORT
        || name == SCHEDULING_GATES
        || UNSUPPORTED_UPSTREAM_PLUGINS.contains(&name)
}

fn check_enabled(
    registry: &Registry,
    field: &str,
    name: &str,
    at: &str,
) -> Result<(), ConfigError> {
    let queue_builtin = match name {
        PRIORITY_SORT => Some("queueSort"),
        SCHEDULING_GATES => Some("preEnqueue"),
        _ => None,
    };
    if let Some(point) = queue_builtin {
        if field == point || field == "multiPoint" {
            return Ok(());
        }
        return Err(invalid(
            format!("{at}.name"),
            format!("plugin {name:?} does not extend {field}"),
        ));
    }
    if matches!(field, "queueSort" | "preEnqueue") {
        return Err(invalid(
            format!("{at}.name"),
            format!(
                "plugin {name:?} cannot be used at {field}: keelson's scheduling queue only supports {PRIORITY_SORT} and {SCHEDULING_GATES}"
            ),
        ));
    }
    if registry.contains(name) {
        return Ok(());
    }
    if UNSUPPORTED_UPSTREAM_PLUGINS.contains(&name) {
        return Err(invalid(
            format!("{at}.name"),
            format!("plugin {name:?} is not supported by keelson"),
        ));
    }
    Err(invalid(
        format!("{at}.name"),
        format!("unknown plugin {name:?}"),
    ))
}

fn percentage(field: &str, p: i64) -> Result<u32, ConfigError> {
    u32::try_from(p).ok().filter(|p| *p <= 100).ok_or_else(|| {
        invalid(
            field,
            format!("Invalid value: {p}: not in valid range [0-100]"),
        )
    })
}

fn profile(i: usize, raw: RawProfile) -> Result<Profile, ConfigError> {
    let scheduler_name = match raw.scheduler_name {
        None => DEFAULT_SCHEDULER_NAME.to_string(),
        Some(n) if n.is_empty() => {
            return Err(invalid(
                format!("profiles[{i}].schedulerName"),
                "Required value",
            ));
        }
        Some(n) => n,
    };
    let percentage_of_nodes_to_score = raw
        .percentage_of_nodes_to_score
        .map(|p| percentage(&format!("profiles[{i}].percentageOfNodesToScore"), p))
        .transpose()?;
    let user_plugins = raw.plugins.unwrap_or_default().into_plugins();
    let queue_sort = user_plugins.get(ExtensionPoint::QueueSort);
    if queue_sort.enabled.len() > 1 {
        return Err(invalid(
            format!("profiles[{i}].plugins.queueSort.enabled"),
            "only one queue sort plugin can be enabled",
        ));
    }
    let mut plugin_config = BTreeMap::new();
    for (j, pc) in raw
        .plugin_config
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("profiles[{i}].pluginConfig[{j}]");
        if pc.name.is_empty() {
            return Err(invalid(format!("{at}.name"), "Required value"));
        }
        if plugin_config.contains_key(&pc.name) {
            return Err(invalid(at, format!("Duplicate value: {:?}", pc.name)));
        }
        plugin_config.insert(pc.name, pc.args.unwrap_or(serde_json::Value::Null));
    }
    Ok(Profile {
        scheduler_name,
        percentage_of_nodes_to_score,
        plugins: Plugins::defaults().merged_with(&user_plugins),
        user_plugins,
        plugin_config,
    })
}

fn leader_election(raw: RawLeaderElection) -> Result<LeaderElection, ConfigError> {
    let mut le = LeaderElection::default();
    let dur = |field: &str, v: Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(s) => parse_go_duration(&s).ok_or_else(|| {
            invalid(
                format!("leaderElection.{field}"),
                format!("Invalid value: {s:?}: not a duration such as \"15s\" or \"1m30s\""),
            )
        }),
    };
    le.lease_duration = dur("leaseDuration", raw.lease_duration, le.lease_duration)?;
    le.renew_deadline = dur("renewDeadline", raw.renew_deadline, le.renew_deadline)?;
    le.retry_period = dur("retryPeriod", raw.retry_period, le.retry_period)?;
    if let Some(b) = raw.leader_elect {
        le.leader_elect = b;
    }
    if let Some(s) = raw.resource_lock {
        le.resource_lock = s;
    }
    if let Some(s) = raw.resource_name {
        le.resource_name = s;
    }
    if let Some(s) = raw.resource_namespace {
        le.resource_namespace = s;
    }
    if le.leader_elect {
        if le.lease_duration <= le.renew_deadline {
            return Err(invalid(
                "leaderElection.leaseDuration",
                "must be greater than renewDeadline",
            ));
        }
        if le.retry_period.is_zero() {
            return Err(invalid(
                "leaderElection.retryPeriod",
                "must be greater than zero",
            ));
        }
    }
    Ok(le)
}

/// A Go `time.Duration` string (`"15s"`, `"1m30s"`, `"500ms"`, `"0"`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(value * scale).ok()?;
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &PluginSet) -> Vec<(&str, i32)> {
        set.enabled
            .iter()
            .map(|p| (p.name.as_str(), p.weight))
            .collect()
    }

    #[test]
    fn empty_file_gets_upstream_defaults() {
        let c = SchedulerConfiguration::parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n",
        )
        .unwrap();
        assert_eq!(c, SchedulerConfiguration::default());
        let p = &c.profiles[0];
        assert_eq!(p.scheduler_name, "default-scheduler");
        assert_eq!(names(&p.plugins.multi_point), DEFAULT_MULTI_POINT.to_vec());
        assert_eq!(c.pod_initial_backoff, Duration::from_secs(1));
        assert_eq!(c.pod_max_backoff, Duration::from_secs(10));
        assert_eq!(c.percentage_of_nodes_to_score, 0);
    }

    #[test]
    fn user_plugins_merge_like_upstream() {
        let c = SchedulerConfiguration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: a
  percentageOfNodesToScore: 70
  plugins:
    multiPoint:
      enabled:
      - name: TaintToleration
        weight: 7
      - name: Extra
      disabled:
      - name: ImageLocality
      - name: VolumeZone
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeAffinity
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
- schedulerName: b
  plugins:
    multiPoint:
      disabled: [{name: "*"}]
      enabled: [{name: NodeName}, {name: DefaultBinder}]
"#,
        )
        .unwrap();
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        let a = &c.profiles[0];
        assert_eq!(a.percentage_of_nodes_to_score, Some(70));
        let mp = names(&a.plugins.multi_point);
        // Re-enabled default replaced in place with the user's weight; disabled default gone;
        // the user's own plugin appended.
        assert_eq!(mp[2], ("TaintToleration", 7));
        assert!(!mp.iter().any(|(n, _)| *n == "ImageLocality"));
        assert_eq!(mp.last(), Some(&("Extra", 0)));
        assert_eq!(mp.len(), DEFAULT_MULTI_POINT.len());
        let score = a.plugins.get(ExtensionPoint::Score);
        assert_eq!(names(score), [("NodeAffinity", 5)]);
        assert!(score.disables_all());
        assert_eq!(
            a.plugin_config["NodeResourcesFit"]["scoringStrategy"]["type"],
            "MostAllocated"
        );
        let b = &c.profiles[1];
        assert_eq!(
            names(&b.plugins.multi_point),
            [("NodeName", 0), ("DefaultBinder", 0)]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        let cases: &[(&str, &str)] = &[
            (
                "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n",
                "apiVersion",
            ),
            ("kind: KubeSchedulerConfiguration\n", "apiVersion"),
            (
                "apiVersion: kubescheduler.config.k8s.io/v1\nkind: Pod\n",
                "kind",
            ),
            ("bogus: 1\n", "unknown field `bogus`"),
            (
                "profiles:\n- schedulerName: x\n  plugins:\n    fitler: {}\n",
                "unknown field `fitler`",
            ),
            (
                "profiles:\n- plugins:\n    score:\n      enabled: [{name: A, wieght: 2}]\n",
                "unknown field `wieght`",
            ),
            (
                "percentageOfNodesToScore: 101\n",
                "percentageOfNodesToScore",
            ),
            (
                "profiles:\n- percentageOfNodesToScore: -1\n",
                "profiles[0].percentageOfNodesToScore",
            ),
            ("podInitialBackoffSeconds: 0\n", "podInitialBackoffSeconds"),
            (
                "podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n",
                "podMaxBackoffSeconds",
            ),
            ("profiles: []\n", "profiles"),
            (
                "profiles:\n- schedulerName: \"\"\n",
                "profiles[0].schedulerName",
            ),
            ("profiles:\n- {}\n- {}\n", "profiles[1].schedulerName"),
            (
                "profiles:\n- pluginConfig: [{name: A}, {name: A}]\n",
                "profiles[0].pluginConfig[1]",
            ),
            ("extenders: [{urlPrefix: x}]\n", "extenders"),
            ("parallelism: 0\n", "parallelism"),
            (
                "leaderElection: {leaseDuration: 5s, renewDeadline: 10s}\n",
                "leaderElection.leaseDuration",
            ),
            (
                "leaderElection: {retryPeriod: soon}\n",
                "leaderElection.retryPeriod",
            ),
        ];
        for (body, want) in cases {
            let text = if body.starts_with("apiVersion") || body.starts_with("kind") {
                body.to_string()
            } else {
                format!("{head}{body}")
            };
            let err = SchedulerConfiguration::parse(&text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{body:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn plugin_names_are_checked_against_the_registry() {
        let mut reg = Registry::new();
        for name in ["NodeName", "DefaultBinder"] {
            reg.register(name, |_| Err("unused".to_string())).unwrap();
        }
        let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        let cases: &[(&str, Option<&str>)] = &[
            (
                "profiles:\n- plugins: {filter: {enabled: [{name: NodeName}]}}\n",
                None,
            ),
            (
                "profiles:\n- plugins: {filter: {enabled: [{name: NodeNam}]}}\n",
                Some("profiles[0].plugins.filter.enabled[0].name: unknown plugin \"NodeNam\""),
            ),
            (
                "profiles:\n- plugins: {multiPoint: {enabled: [{name: VolumeZone}]}}\n",
                Some(
                    "profiles[0].plugins.multiPoint.enabled[0].name: plugin \"VolumeZone\" is not supported by keelson",
                ),
            ),
            (
                "profiles:\n- plugins: {multiPoint: {disabled: [{name: VolumeZone}, {name: Nope}]}}\n",
                Some("profiles[0].plugins.multiPoint.disabled[1].name: unknown plugin \"Nope\""),
            ),
            (
                "profiles:\n- plugins: {queueSort: {enabled: [{name: PrioritySort}]}}\n",
                None,
            ),
            (
                "profiles:\n- plugins: {queueSort: {enabled: [{name: NodeName}]}}\n",
                Some("profiles[0].plugins.queueSort.enabled[0].name"),
            ),
            (
                "profiles:\n- plugins: {score: {enabled: [{name: NodeName, weight: -1}]}}\n",
                Some("profiles[0].plugins.score.enabled[0].weight"),
            ),
            (
                "profiles:\n- pluginConfig: [{name: Foo, args: {}}]\n",
                Some("profiles[0].pluginConfig: args for unknown plugin \"Foo\""),
            ),
        ];
        for (body, want) in cases {
            let c = SchedulerConfiguration::parse(&format!("{head}{body}")).unwrap();
            let got = c.validate_plugins(&reg).err().map(|e| e.to_string());
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => assert!(g.contains(w), "{body:?}: {g:?} lacks {w:?}"),
                (w, g) => panic!("{body:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn json_is_accepted() {
        let c = SchedulerConfiguration::parse(
            r#"{"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                "profiles": [{"schedulerName": "j"}]}"#,
        )
        .unwrap();
        assert_eq!(c.profiles[0].scheduler_name, "j");
    }

    #[test]
    fn go_durations_parse() {
        for (s, want) in [
            ("15s", Some(Duration::from_secs(15))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1.5h", Some(Duration::from_secs(5400))),
            ("0", Some(Duration::ZERO)),
            ("", None),
            ("10", None),
            ("5x", None),
        ] {
            assert_eq!(parse_go_duration(s), want, "{s}");
        }
    }

    #[test]
    fn load_reads_files() {
        let dir = std::env::temp_dir().join(format!("keelson-sched-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n",
        )
        .unwrap();
        assert!(SchedulerConfiguration::load(&path).is_ok());
        let err = SchedulerConfiguration::load(dir.join("missing.yaml")).unwrap_err();
        assert!(err.to_string().contains("missing.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
