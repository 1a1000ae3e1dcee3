//! Reaching etcd: endpoint syntax, TLS material, and the checks `EtcdStore::connect` runs so
//! that a wrong address, a refused connection or a certificate problem is reported at start-up,
//! by endpoint and with its cause, instead of as a hang or a vague error on the first request.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tonic::transport::Endpoint;

use super::EtcdOptions;
use super::error::{chain, map};
use crate::StoreError;

/// TLS material for talking to etcd, as PEM.
#[derive(Clone, Default)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificates. Required for `https://` endpoints.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its key, for an etcd that requires client certificates
    /// (`--client-cert-auth`).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl EtcdTls {
    /// Reads the PEM files (like etcdctl's `--cacert`, `--cert`, `--key`). A certificate needs
    /// its key and the other way round.
    pub fn from_files(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<EtcdTls, StoreError> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                StoreError::Internal(format!(
                    "cannot read the etcd {what} {}: {e}",
                    path.display()
                ))
            })
        };
        let ca_pem = ca.map(|p| read("CA certificate", p)).transpose()?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                Some((read("client certificate", cert)?, read("client key", key)?))
            }
            (None, None) => None,
            _ => {
                return Err(StoreError::Internal(
                    "an etcd client certificate needs its key and the other way round \
                     (--etcd-certfile and --etcd-keyfile go together)"
                        .into(),
                ));
            }
        };
        Ok(EtcdTls { ca_pem, identity })
    }

    fn options(&self) -> TlsOptions {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        tls
    }
}

/// Checks and normalises endpoints: `http://host:port` or `https://host:port`; a bare
/// `host:port` is `https` when TLS material is given and `http` otherwise.
pub(super) fn normalize(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
) -> Result<Vec<String>, StoreError> {
    if endpoints.is_empty() {
        return Err(StoreError::Internal("no etcd endpoint given".into()));
    }
    let bad = |ep: &str, why: &str| StoreError::Internal(format!("etcd endpoint {ep:?}: {why}"));
    let mut out = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let ep = ep.trim().trim_end_matches('/');
        let (scheme, authority) = match ep.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some((other, _)) => {
                return Err(bad(
                    ep,
                    &format!("unsupported scheme {other:?} (use http:// or https://)"),
                ));
            }
            None if tls.is_some() => ("https", ep),
            None => ("http", ep),
        };
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || authority.contains('/') {
            return Err(bad(ep, "expected HOST:PORT"));
        }
        match (scheme, tls) {
            ("https", None) => {
                return Err(bad(
                    ep,
                    "an https endpoint needs the CA certificate that signed etcd's serving \
                     certificate (--etcd-cafile)",
                ));
            }
            ("https", Some(t)) if t.ca_pem.is_none() => {
                return Err(bad(
                    ep,
                    "an https endpoint needs the CA certificate (--etcd-cafile)",
                ));
            }
            ("http", Some(_)) => {
                return Err(bad(
                    ep,
                    "TLS files were given but the endpoint is plain http://",
                ));
            }
            _ => {}
        }
        out.push(format!("{scheme}://{authority}"));
    }
    Ok(out)
}

/// The client options every connection uses.
pub(super) fn client_options(tls: Option<&EtcdTls>, options: &EtcdOptions) -> ConnectOptions {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(options.connect_timeout)
        // HTTP/2 pings find a dead connection (a member that vanished without closing its
        // sockets) so that requests fail over and a watch on it ends instead of hanging.
        .with_keep_alive(options.keep_alive_interval, options.keep_alive_timeout)
        .with_keep_alive_while_idle(true);
    if let Some(tls) = tls {
        o = o.with_tls(tls.options());
    }
    o
}

/// Marks a transport failure on a connection that was established (and, with TLS, whose
/// handshake passed).
const AFTER_HANDSHAKE: &str = "after connecting";

/// What one endpoint said when probed.
struct Probe {
    endpoint: String,
    result: Result<Version, String>,
}

/// The etcd version the cluster runs: the oldest any probed member reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses "3.4.23" (a suffix such as "-rc.1" is ignored).
    pub(super) fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split(['.', '-', '+']);
        let mut next = || parts.next()?.parse::<u32>().ok();
        Some(Version(next()?, next()?, next()?))
    }

    /// Whether this etcd sends a requested progress notification in order with the watch's
    /// events. Before 3.4.25 / 3.5.8 it could overtake events still queued for the stream
    /// (etcd issue 15220).
    pub(super) fn orders_progress(self) -> bool {
        match self {
            Version(3, 4, patch) => patch >= 25,
            Version(3, 5, patch) => patch >= 8,
            Version(major, minor, _) => (major, minor) > (3, 5),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Once one endpoint has answered, how much longer the others get before start-up goes on
/// without them (a member whose host drops packets would otherwise hold it up for the whole
/// connect timeout).
const STRAGGLER_GRACE: Duration = Duration::from_secs(1);

/// Probes every endpoint on its own connection; returns the oldest version among those that
/// answered, or an error naming each endpoint and why it could not be used.
pub(super) async fn probe_all(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
    options: &EtcdOptions,
) -> Result<Version, StoreError> {
    let mut pending: FuturesUnordered<_> =
        endpoints.iter().map(|ep| probe(ep, tls, options)).collect();
    let mut probes = Vec::with_capacity(endpoints.len());
    let mut grace_until = None;
    loop {
        let next = match grace_until {
            Some(until) => match tokio::time::timeout_at(until, pending.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => pending.next().await,
        };
        let Some(probe) = next else { break };
        if probe.result.is_ok() && grace_until.is_none() {
            grace_until = Some(tokio::time::Instant::now() + STRAGGLER_GRACE);
        }
        probes.push(probe);
    }
    let oldest = probes
        .iter()
        .filter_map(|p| p.result.as_ref().ok())
        .min()
        .copied();
    if let Some(version) = oldest {
        for p in &probes {
            if let Err(why) = &p.result {
                tracing::warn!(endpoint = %p.endpoint, error = %why, "etcd endpoint not usable at start-up; using the others");
            }
        }
        if probes.len() < endpoints.len() {
            tracing::warn!(
                answered = probes.len(),
                endpoints = endpoints.len(),
                "some etcd endpoints did not answer at start-up; using those that did"
            );
        }
        return Ok(version);
    }
    let mut msg = String::from("cannot connect to etcd: ");
    for (i, p) in probes.iter().enumerate() {
        if i > 0 {
            msg.push_str("; ");
        }
        let why = p.result.as_ref().err().map_or("", String::as_str);
        let _ = write!(msg, "{}: {why}", p.endpoint);
    }
    Err(StoreError::Unavailable(msg))
}

/// Connects to one endpoint and asks it for its status. Transport problems (refused, timeout,
/// TLS) are read from the connection attempt itself, which states them precisely; a request
/// through the client's balanced channel would only wait for a connection that never comes.
async fn probe(endpoint: &str, tls: Option<&EtcdTls>, options: &EtcdOptions) -> Probe {
    let identity = tls.is_some_and(|t| t.identity.is_some());
    let result = probe_inner(endpoint, tls, options)
        .await
        .map_err(|why| with_hint(why, tls.is_some(), identity));
    Probe {
        endpoint: endpoint.to_owned(),
        result,
    }
}

async fn probe_inner(
    endpoint: &str,
    tls: Option<&EtcdTls>,
    options: &EtcdOptions,
) -> Result<Version, String> {
    let mut ep = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| chain(&e))?
        .connect_timeout(options.connect_timeout);
    if let Some(tls) = tls {
        ep = ep
            .tls_config(tls.options())
            .map_err(|e| format!("TLS setup: {}", chain(&e)))?;
    }
    // The connect timeout bounds TCP; TLS and HTTP/2 set-up get the same again.
    let channel = match tokio::time::timeout(options.connect_timeout * 2, ep.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Err(describe_connect_error(&e)),
        Err(_) => {
            return Err(format!(
                "no connection within {:?} (is etcd listening there?)",
                options.connect_timeout * 2
            ));
        }
    };
    let mut client = Client::from_channel(
        etcd_client::Channel::Tonic(channel),
        Some(client_options(tls, options)),
    )
    .await
    .map_err(|e| chain(&e))?;
    // A member that takes longer than a connection to answer its status is not usable.
    let status = tokio::time::timeout(options.connect_timeout, client.status())
        .await
        .map_err(|_| {
            format!(
                "connected, but no status answer within {:?}",
                options.connect_timeout
            )
        })?
        .map_err(|e| match map(e, endpoint, "status") {
            StoreError::Unavailable(m) => format!("{m} ({AFTER_HANDSHAKE})"),
            StoreError::Timeout(m) | StoreError::Internal(m) => m,
            other => other.to_string(),
        })?;
    Version::parse(status.version())
        .ok_or_else(|| format!("etcd reported an unreadable version {:?}", status.version()))
}

/// A connection error as a sentence.
fn describe_connect_error(e: &tonic::transport::Error) -> String {
    chain(e)
}

/// `text` (why an endpoint could not be used) with a hint for the usual TLS mistakes.
/// `tls` says whether TLS was used, `identity` whether a client certificate was offered.
fn with_hint(text: String, tls: bool, identity: bool) -> String {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    // BadSignature: a CA of the same name but another key (say, one generated again).
    let hint = if has(&["UnknownIssuer", "unknown issuer", "BadSignature"]) {
        " (etcd's certificate is not signed by the given CA: check --etcd-cafile)"
    } else if has(&["NotValidForName", "not valid for name"]) {
        " (etcd's certificate does not name this host: use an endpoint its certificate covers)"
    } else if has(&[
        "CertificateRequired",
        "BadCertificate",
        "certificate required",
    ]) {
        if identity {
            " (etcd did not accept the client certificate: is it signed by a CA etcd trusts?)"
        } else {
            " (etcd requires a client certificate: --etcd-certfile and --etcd-keyfile)"
        }
    } else if has(&["InvalidContentType", "corrupt message"]) {
        " (is this endpoint plain http?)"
    } else if tls && !identity && has(&[AFTER_HANDSHAKE]) {
        // With TLS 1.3 the server checks the client certificate after the handshake, and its
        // alert can lose the race with the connection closing: all the client sees is the
        // connection going away under its first request.
        " (if etcd requires client certificates: --etcd-certfile and --etcd-keyfile)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

/// Builds the client the store uses: one balanced channel over all endpoints, which skips
/// members that are down and reconnects on its own when they return.
pub(super) async fn client(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
    options: &EtcdOptions,
) -> Result<Client, StoreError> {
    Client::connect(endpoints, Some(client_options(tls, options)))
        .await
        .map_err(|e| map(e, &endpoints.join(","), "connect"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalize(&eps(&["127.0.0.1:2379", "http://h2:2379/"]), None),
            Ok(eps(&["http://127.0.0.1:2379", "http://h2:2379"]))
        );
        let tls = EtcdTls {
            ca_pem: Some(b"ca".to_vec()),
            identity: None,
        };
        assert_eq!(
            normalize(&eps(&["h1:2379", "https://h2:2379"]), Some(&tls)),
            Ok(eps(&["https://h1:2379", "https://h2:2379"]))
        );
    }

    #[test]
    fn bad_endpoints_are_refused_with_the_reason() {
        let err = |list: &[&str], tls: Option<&EtcdTls>| match normalize(&eps(list), tls) {
            Err(StoreError::Internal(m)) => m,
            other => panic!("expected an error, got {other:?}"),
        };
        assert!(err(&[], None).contains("no etcd endpoint"));
        assert!(err(&["h1"], None).contains("expected HOST:PORT"));
        assert!(err(&["h1:port"], None).contains("expected HOST:PORT"));
        assert!(err(&["unix:///x"], None).contains("unsupported scheme"));
        assert!(err(&["https://h1:2379"], None).contains("--etcd-cafile"));
        let tls = EtcdTls {
            ca_pem: Some(b"ca".to_vec()),
            identity: None,
        };
        assert!(err(&["http://h1:2379"], Some(&tls)).contains("plain http"));
    }

    #[test]
    fn versions_parse_and_know_about_ordered_progress() {
        assert_eq!(Version::parse("3.4.23"), Some(Version(3, 4, 23)));
        assert_eq!(Version::parse("3.6.0-rc.1"), Some(Version(3, 6, 0)));
        assert_eq!(Version::parse("three"), None);
        assert!(!Version(3, 4, 23).orders_progress());
        assert!(Version(3, 4, 25).orders_progress());
        assert!(!Version(3, 5, 7).orders_progress());
        assert!(Version(3, 5, 8).orders_progress());
        assert!(Version(3, 6, 0).orders_progress());
        assert!(Version(4, 0, 0).orders_progress());
        assert!(!Version(3, 3, 30).orders_progress());
        assert!(Version(3, 4, 23) < Version(3, 5, 0));
    }

    #[test]
    fn tls_failures_get_a_hint() {
        let hinted = with_hint(
            "invalid peer certificate: UnknownIssuer".into(),
            true,
            false,
        );
        assert!(hinted.ends_with("check --etcd-cafile)"), "{hinted}");
        let hinted = with_hint("received fatal alert: BadCertificate".into(), true, false);
        assert!(hinted.contains("requires a client certificate"), "{hinted}");
        let hinted = with_hint("received fatal alert: BadCertificate".into(), true, true);
        assert!(
            hinted.contains("did not accept the client certificate"),
            "{hinted}"
        );
        let hinted = with_hint("connection closed (after connecting)".into(), true, false);
        assert!(hinted.contains("--etcd-certfile"), "{hinted}");
        assert_eq!(
            with_hint("Connection refused".into(), false, false),
            "Connection refused"
        );
        let plain = "connection closed (after connecting)";
        assert_eq!(with_hint(plain.into(), false, false), plain);
    }

    #[test]
    fn tls_debug_does_not_print_keys() {
        let tls = EtcdTls {
            ca_pem: Some(b"CA".to_vec()),
            identity: Some((b"CERT".to_vec(), b"SECRET".to_vec())),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
