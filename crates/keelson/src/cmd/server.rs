//! `keelson server`: the control plane on this machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

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

    let db_dir = args.data_dir.join("db");
    let kv =
        store::embedded::EmbeddedStore::open(&db_dir, store::embedded::EmbeddedOptions::default())
            .await
            .with_context(|| format!("opening the embedded store in {}", db_dir.display()))?;

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

    shutdown_signal().await;
    println!("keelson: shutting down");
    Ok(())
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
