//! `keelson server`: the control plane on this machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{kubeconfig, pki};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where certificates, the kubeconfig and the embedded store live.
    #[arg(long, default_value = "/var/lib/keelson")]
    pub data_dir: PathBuf,
    /// Address and port the API server listens on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub bind: SocketAddr,
    /// Address clients should use to reach this server, when it differs from --bind
    /// (e.g. --bind 0.0.0.0:6443 --advertise-address 192.168.1.10).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Cluster IPs of Services are allocated from this range.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// NodePorts are allocated from this range.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// Where the cluster state lives: `embedded` (DATA_DIR/db), a directory for the embedded
    /// store, or an etcd cluster: `etcd://HOST:PORT[,HOST:PORT...]` (plain HTTP, or TLS when
    /// --etcd-cafile is given) or `https://HOST:PORT[,HOST:PORT...]`. Servers sharing one etcd
    /// serve the same cluster (give them the same CA: copy DATA_DIR/tls/ca.crt and ca.key).
    #[arg(long, default_value = "embedded")]
    pub datastore: String,
    /// CA certificate (PEM) that signed etcd's serving certificates.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate (PEM) for an etcd that requires one; needs --etcd-keyfile.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// Key (PEM) of --etcd-certfile.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// How often old history is compacted away (`0s` turns automatic compaction off).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub compaction_interval: Duration,
    /// History younger than this is always kept, so watchers can resume through it.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub compaction_min_age: Duration,
    /// At least this many revisions behind the newest are always kept.
    #[arg(long, default_value_t = 10_000)]
    pub compaction_min_revisions: i64,
    /// Do not run the scheduler in this process (pods stay Pending unless another scheduler
    /// binds them).
    #[arg(long)]
    pub disable_scheduler: bool,
    /// The scheduler's configuration: a KubeSchedulerConfiguration
    /// (kubescheduler.config.k8s.io/v1) in YAML or JSON. Default: one `default-scheduler`
    /// profile with the default plugins.
    #[arg(long, value_name = "FILE")]
    pub scheduler_config: Option<PathBuf>,
    /// Do not run the controllers in this process (Deployments, ReplicaSets, Jobs, garbage
    /// collection, ... then do nothing unless another controller manager runs them).
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// Which controllers run: `*` for all, a name to enable one, `-NAME` to disable one,
    /// e.g. `*,-podgc` (kube-controller-manager's --controllers).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Pod CIDRs of nodes are allocated from this range.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// A node that stops renewing its Lease and status for this long becomes Ready=Unknown
    /// (and is tainted unreachable, which evicts its pods after their tolerationSeconds).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// Grace for a newly registered node before it is judged unresponsive.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Terminated pods beyond this many are deleted, oldest first.
    #[arg(long, default_value_t = 12_500)]
    pub terminated_pod_gc_threshold: usize,
}

/// Parses `500ms`, `30s`, `5m`, `2h` (and a bare number of seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m or 500ms"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(d)
}

impl Args {
    /// The automatic compaction the flags ask for, the same for every backend.
    fn compaction(&self) -> Option<store::embedded::CompactionPolicy> {
        (!self.compaction_interval.is_zero()).then(|| store::embedded::CompactionPolicy {
            interval: self.compaction_interval,
            min_age: self.compaction_min_age,
            min_revisions_behind: self.compaction_min_revisions.max(0),
        })
    }
}

/// Where `--datastore` says the cluster state lives.
#[derive(Debug, PartialEq, Eq)]
enum Datastore {
    Embedded(PathBuf),
    /// etcd endpoints, each `http://HOST:PORT`, `https://HOST:PORT` or a bare `HOST:PORT`
    /// (https when TLS files are given).
    Etcd(Vec<String>),
}

fn parse_datastore(spec: &str, data_dir: &Path) -> anyhow::Result<Datastore> {
    let endpoints = |list: &str, scheme: Option<&str>| -> anyhow::Result<Datastore> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim) {
            if item.is_empty() {
                bail!("--datastore {spec:?}: empty etcd endpoint");
            }
            out.push(match scheme {
                Some(scheme) if !item.contains("://") => format!("{scheme}://{item}"),
                _ => item.to_owned(),
            });
        }
        Ok(Datastore::Etcd(out))
    };
    if spec == "embedded" {
        return Ok(Datastore::Embedded(data_dir.join("db")));
    }
    if let Some(list) = spec.strip_prefix("etcd://") {
        // The scheme follows the TLS flags (see `store::etcd`): bare HOST:PORT items.
        if list.contains("://") {
            bail!("--datastore {spec:?}: write etcd://HOST:PORT,HOST:PORT (one etcd:// in front)");
        }
        return endpoints(list, None);
    }
    for scheme in ["https", "http"] {
        if spec.starts_with(&format!("{scheme}://")) {
            return endpoints(spec, Some(scheme));
        }
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        bail!(
            "--datastore {spec:?}: unknown scheme {scheme:?} (use embedded, a directory, \
             etcd://HOST:PORT or https://HOST:PORT)"
        );
    }
    Ok(Datastore::Embedded(PathBuf::from(spec)))
}

/// Opens the store `--datastore` names.
async fn open_datastore(args: &Args) -> anyhow::Result<Arc<dyn store::KvStore>> {
    let etcd_flags =
        args.etcd_cafile.is_some() || args.etcd_certfile.is_some() || args.etcd_keyfile.is_some();
    match parse_datastore(&args.datastore, &args.data_dir)? {
        Datastore::Embedded(dir) => {
            if etcd_flags {
                bail!("--etcd-cafile, --etcd-certfile and --etcd-keyfile need an etcd --datastore");
            }
            let kv = store::embedded::EmbeddedStore::open(
                &dir,
                store::embedded::EmbeddedOptions {
                    auto_compaction: args.compaction(),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
            Ok(kv)
        }
        Datastore::Etcd(endpoints) => {
            let tls = if etcd_flags {
                Some(store::etcd::EtcdTls::from_files(
                    args.etcd_cafile.as_deref(),
                    args.etcd_certfile.as_deref(),
                    args.etcd_keyfile.as_deref(),
                )?)
            } else {
                None
            };
            let kv = store::etcd::EtcdStore::connect(
                &endpoints,
                tls,
                store::etcd::EtcdOptions {
                    auto_compaction: args.compaction(),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("connecting to etcd (--datastore {})", args.datastore))?;
            Ok(kv)
        }
    }
}

fn parse_cidr(s: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    let (ip, bits) = s
        .split_once('/')
        .with_context(|| format!("--service-cidr {s:?} is not of the form A.B.C.D/N"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("--service-cidr {s:?}: bad address"))?;
    let bits: u8 = bits
        .parse()
        .with_context(|| format!("--service-cidr {s:?}: bad prefix length"))?;
    if !(8..=30).contains(&bits) {
        bail!("--service-cidr {s:?}: the prefix length must be between 8 and 30");
    }
    let mask = u32::MAX << (32 - bits);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), bits))
}

fn parse_port_range(s: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let (a, b) = s
        .split_once('-')
        .with_context(|| format!("--service-node-port-range {s:?} is not of the form LOW-HIGH"))?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || a > b {
        bail!("--service-node-port-range {s:?}: LOW must be at least 1 and not above HIGH");
    }
    Ok(a..=b)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let service_cidr = parse_cidr(&args.service_cidr)?;
    let node_port_range = parse_port_range(&args.service_node_port_range)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;

    let advertise_ip = args
        .advertise_address
        .unwrap_or(if args.bind.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            args.bind.ip()
        });
    let advertise = SocketAddr::new(advertise_ip, args.bind.port());
    let service_ip = IpAddr::V4(Ipv4Addr::from(u32::from(service_cidr.0) + 1));
    let names = pki::server_names(&[args.bind.ip(), advertise_ip], service_ip);
    let tls_dir = args.data_dir.join("tls");
    let pki = pki::ensure(&tls_dir, &names)
        .with_context(|| format!("preparing certificates in {}", tls_dir.display()))?;

    // A bad scheduler configuration stops the server before it serves, as upstream's
    // kube-scheduler refuses to start.
    let scheduler_config = if args.disable_scheduler {
        None
    } else {
        Some(scheduler_configuration(args.scheduler_config.as_deref())?)
    };

    // Like the scheduler's configuration, a bad controller list stops the server up front.
    let controllers = if args.disable_controller_manager {
        None
    } else {
        Some(controller_manager_options(&args, &pki.ca_cert_pem)?)
    };

    let kv = open_datastore(&args).await?;

    let config = apiserver::Config {
        bind: args.bind,
        advertise,
        tls: apiserver::TlsMaterial {
            client_ca_pem: pki.ca_cert_pem.clone().into_bytes(),
            cert_pem: format!("{}{}", pki.server_cert_pem, pki.ca_cert_pem).into_bytes(),
            key_pem: pki.server_key_pem.clone().into_bytes(),
        },
        registry: registry::Config {
            service_cidr,
            node_port_range,
        },
    };
    let server = apiserver::start(config, kv)
        .await
        .context("starting the API server")?;

    let kubeconfig_path = args.data_dir.join("kubeconfig.yaml");
    let url = format!("https://{advertise}");
    kubeconfig::write(
        &kubeconfig_path,
        &kubeconfig::render(
            &url,
            &pki.ca_cert_pem,
            &pki.admin_cert_pem,
            &pki.admin_key_pem,
        ),
    )
    .with_context(|| format!("writing {}", kubeconfig_path.display()))?;

    println!(
        "keelson is ready at {url} (started in {} ms, listening on {})\n\nPoint kubectl at it with:\n\n  export KUBECONFIG={}\n  kubectl get namespaces\n",
        started.elapsed().as_millis(),
        server.local_addr,
        kubeconfig_path.display()
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = scheduler_config.map(|(config, text)| {
        let api = loopback(server.local_addr);
        let ca = pki.ca_cert_pem.clone();
        tokio::spawn(run_scheduler(
            api,
            ca,
            tls_dir.clone(),
            config,
            text,
            stop_rx.clone(),
        ))
    });

    let controller_manager = controllers.map(|options| {
        let api = loopback(server.local_addr);
        let ca = pki.ca_cert_pem.clone();
        tokio::spawn(run_controller_manager(
            api,
            ca,
            tls_dir.clone(),
            options,
            stop_rx.clone(),
        ))
    });

    shutdown_signal().await;
    println!("keelson: shutting down");
    let _ = stop_tx.send(true);
    // Long enough to hand the Leases over, never long enough to hang a stop.
    for task in [scheduler, controller_manager].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    Ok(())
}

/// The controller manager's options from the flags, checked before anything starts.
fn controller_manager_options(
    args: &Args,
    ca_pem: &str,
) -> anyhow::Result<controller_manager::Options> {
    let cidr = parse_cidr(&args.cluster_cidr).context("--cluster-cidr")?;
    if args.node_cidr_mask_size < cidr.1 || args.node_cidr_mask_size > 30 {
        bail!(
            "--node-cidr-mask-size {} must be between the --cluster-cidr prefix length ({}) and 30",
            args.node_cidr_mask_size,
            cidr.1
        );
    }
    let options = controller_manager::Options {
        identity: leader::default_identity(),
        controllers: args.controllers.clone(),
        settings: controller_runtime::Settings {
            node_monitor_grace_period: args.node_monitor_grace_period,
            node_monitor_period: args.node_monitor_period,
            node_startup_grace_period: args.node_startup_grace_period,
            cluster_cidr: format!("{}/{}", cidr.0, cidr.1),
            node_cidr_mask_size: args.node_cidr_mask_size,
            terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
            root_ca_pem: Some(ca_pem.to_owned()),
            ..controller_runtime::Settings::default()
        },
        ..controller_manager::Options::default()
    };
    controller_manager::enabled(&options.controllers, &controller_manager::all_controllers())?;
    Ok(options)
}

/// The configuration `--scheduler-config` names (checked against the plugin registry), or the
/// default one.
/// Also returns the file's text ("" for the defaults), which the scheduler publishes for
/// `keelson why`.
fn scheduler_configuration(
    path: Option<&Path>,
) -> anyhow::Result<(scheduler::config::SchedulerConfiguration, String)> {
    let (config, text) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --scheduler-config {}", p.display()))?;
            let config = scheduler::config::SchedulerConfiguration::parse(&text)
                .with_context(|| format!("--scheduler-config {}", p.display()))?;
            (config, text)
        }
        None => (
            scheduler::config::SchedulerConfiguration::default(),
            String::new(),
        ),
    };
    scheduler::profile::Frameworks::new(&config, &scheduler::registry::Registry::default_plugins())
        .context("building the scheduler's profiles")?;
    Ok((config, text))
}

/// Where in-process components reach the API server: its own address, over loopback when it
/// listens on every interface.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// A client certificate for an in-process component (`CN=user`, `O=group`s), issued by the
/// cluster CA and kept in memory only: each start issues a fresh one.
fn component_certificate(tls_dir: &Path, user: &str) -> anyhow::Result<(String, String)> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
    };
    let read = |f: &str| {
        std::fs::read_to_string(tls_dir.join(f))
            .with_context(|| format!("reading {}", tls_dir.join(f).display()))
    };
    let ca_key = KeyPair::from_pem(&read("ca.key")?).context("the cluster CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&read("ca.crt")?, ca_key).context("the cluster CA")?;
    let key = KeyPair::generate().context("generating a component key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, user);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params
        .signed_by(&key, &issuer)
        .context("issuing a component certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A kube client for an in-process component, authenticated as `user` with a fresh
/// certificate from the cluster CA.
async fn component_client(
    api: SocketAddr,
    ca_pem: &str,
    tls_dir: &Path,
    user: &str,
) -> anyhow::Result<kube::Client> {
    let (cert, key) = component_certificate(tls_dir, user)?;
    let text = kubeconfig::render(&format!("https://{api}"), ca_pem, &cert, &key);
    let kc = kube::config::Kubeconfig::from_yaml(&text)
        .with_context(|| format!("the kubeconfig of {user}"))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("the client configuration of {user}"))?;
    kube::Client::try_from(cfg).with_context(|| format!("the client of {user}"))
}

/// Runs the controllers against this server as `system:kube-controller-manager`, in the
/// background.
async fn run_controller_manager(
    api: SocketAddr,
    ca_pem: String,
    tls_dir: PathBuf,
    options: controller_manager::Options,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let client =
        match component_client(api, &ca_pem, &tls_dir, "system:kube-controller-manager").await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the controller manager cannot start"
                );
                return;
            }
        };
    if let Err(e) = controller_manager::run(client, options, stop).await {
        tracing::error!(error = %e, "the controller manager stopped");
    }
}

/// Runs the scheduler against this server as `system:kube-scheduler`, in the background: the
/// API is already serving, and nothing here delays readiness.
async fn run_scheduler(
    api: SocketAddr,
    ca_pem: String,
    tls_dir: PathBuf,
    config: scheduler::config::SchedulerConfiguration,
    config_text: String,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match component_client(api, &ca_pem, &tls_dir, "system:kube-scheduler").await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "the scheduler cannot start");
            return;
        }
    };
    let options = scheduler::runtime::Options {
        published_config: Some(config_text),
        ..scheduler::runtime::Options::default()
    };
    if let Err(e) = scheduler::runtime::Scheduler::run_with(client, config, options, stop).await {
        tracing::error!(error = %e, "the scheduler stopped");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }

    fn parse(spec: &str) -> anyhow::Result<Datastore> {
        parse_datastore(spec, Path::new("/var/lib/keelson"))
    }

    fn etcd(list: &[&str]) -> Datastore {
        Datastore::Etcd(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn datastore_specs() {
        assert_eq!(
            parse("embedded").unwrap(),
            Datastore::Embedded(PathBuf::from("/var/lib/keelson/db"))
        );
        assert_eq!(
            parse("/srv/keelson-db").unwrap(),
            Datastore::Embedded(PathBuf::from("/srv/keelson-db"))
        );
        assert_eq!(
            parse("relative/db").unwrap(),
            Datastore::Embedded(PathBuf::from("relative/db"))
        );
        assert_eq!(
            parse("etcd://127.0.0.1:2379").unwrap(),
            etcd(&["127.0.0.1:2379"])
        );
        assert_eq!(
            parse("etcd://h1:2379, h2:2379,h3:2379").unwrap(),
            etcd(&["h1:2379", "h2:2379", "h3:2379"])
        );
        assert_eq!(
            parse("https://h1:2379,h2:2379").unwrap(),
            etcd(&["https://h1:2379", "https://h2:2379"])
        );
        assert_eq!(
            parse("https://h1:2379,https://h2:2379").unwrap(),
            etcd(&["https://h1:2379", "https://h2:2379"])
        );
        assert_eq!(parse("http://h1:2379").unwrap(), etcd(&["http://h1:2379"]));
    }

    #[test]
    fn bad_datastore_specs_say_what_is_wrong() {
        let err = |spec: &str| parse(spec).unwrap_err().to_string();
        assert!(err("etcd://h1:2379,,h2:2379").contains("empty etcd endpoint"));
        assert!(err("etcd://").contains("empty etcd endpoint"));
        assert!(err("etcd://https://h1:2379").contains("one etcd:// in front"));
        assert!(err("mysql://db:3306").contains("unknown scheme \"mysql\""));
    }
}
