//! The etcd backend against real etcd processes: a 3-member cluster losing a member, an etcd
//! outage and recovery, connection failures (nothing listening, an untrusted certificate), TLS,
//! progress on many watches, and automatic compaction shared by two stores. The conformance
//! suite runs in `etcd_conformance.rs`.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod etcd_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_support::{Cluster, TlsFiles, assert_transient, eventually, free_port, test_options};
use futures::StreamExt;
use store::embedded::CompactionPolicy;
use store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use store::{EventKind, KvStore, RangeRequest, Revision, StoreError, WatchEvent, WatchStream};

const WAIT: Duration = Duration::from_secs(20);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn prefix(p: &str) -> RangeRequest {
    RangeRequest {
        prefix: p.into(),
        ..RangeRequest::default()
    }
}

async fn next(stream: &mut WatchStream) -> Option<Result<WatchEvent, StoreError>> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a watch item in time")
}

/// Follows `prefix` from `after` until `count` changes were seen, watching again whenever the
/// stream breaks (as the API server's watch cache does).
async fn follow(
    store: Arc<EtcdStore>,
    p: &str,
    mut after: Revision,
    count: usize,
) -> Vec<WatchEvent> {
    let mut seen = Vec::new();
    let mut breaks = 0;
    while seen.len() < count {
        let mut stream = match store.watch(p, after).await {
            Ok(s) => s,
            Err(e) => {
                assert_transient(&e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while seen.len() < count {
            match next(&mut stream).await {
                Some(Ok(e)) if e.kind == EventKind::Progress => {}
                Some(Ok(e)) => {
                    after = e.revision();
                    seen.push(e);
                }
                Some(Err(e)) => {
                    assert_transient(&e);
                    breaks += 1;
                    assert!(breaks < 20, "the watch keeps breaking: {e}");
                    break;
                }
                None => panic!("a watch stream ended without an error"),
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_cluster_keeps_serving_without_one_member() {
    let mut cluster = Cluster::three().await;
    let store = cluster.store().await;
    assert!(
        store.server_version().starts_with("3."),
        "{}",
        store.server_version()
    );
    let p = "/three/";
    let r0 = store.current_revision().await.unwrap();
    let before = 10;
    for i in 0..before {
        store.create(&format!("{p}{i:02}"), b("v")).await.unwrap();
    }
    let after_kill = 20;
    let watcher = tokio::spawn(follow(store.clone(), p, r0, before + after_kill));

    // Member 0 goes away without a word (it may be the leader or hold the watch's stream).
    cluster.kill(0);
    for i in before..before + after_kill {
        let key = format!("{p}{i:02}");
        // Retried only around a leader election: a create whose answer was lost shows up as
        // AlreadyExists on the retry, so that counts as done.
        eventually(WAIT, "create with a member down", || async {
            match store.create(&key, b("v")).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
                Err(e) => {
                    assert_transient(&e);
                    Err(e)
                }
            }
        })
        .await;
    }
    let listed = store.range(prefix(p)).await.unwrap();
    assert_eq!(listed.kvs.len(), before + after_kill);
    let keys: Vec<String> = listed.kvs.iter().map(|kv| kv.key.clone()).collect();
    let expected: Vec<String> = (0..before + after_kill)
        .map(|i| format!("{p}{i:02}"))
        .collect();
    assert_eq!(keys, expected);

    let events = watcher.await.unwrap();
    let seen: Vec<&str> = events.iter().map(|e| e.kv.key.as_str()).collect();
    assert_eq!(
        seen, expected,
        "every write seen once, in order, across re-watches"
    );
    let revisions: Vec<Revision> = events.iter().map(WatchEvent::revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");

    // A fresh store pointed only at the surviving members works too, and the killed member
    // catches up when it comes back.
    let survivors: Vec<String> = cluster.endpoints()[1..].to_vec();
    let other = EtcdStore::connect(&survivors, None, test_options())
        .await
        .unwrap();
    assert_eq!(
        other.range(prefix(p)).await.unwrap().kvs.len(),
        before + after_kill
    );
    cluster.members[0].start();
    let only_0 = [cluster.endpoints()[0].clone()];
    let rejoined = eventually(WAIT, "member 0 back", || async {
        EtcdStore::connect(&only_0, None, test_options()).await
    })
    .await;
    let count = eventually(WAIT, "member 0 caught up", || async {
        let n = rejoined.range(prefix(p)).await?.kvs.len();
        if n == before + after_kill {
            Ok(n)
        } else {
            Err(StoreError::Unavailable(format!("{n} keys so far")))
        }
    })
    .await;
    assert_eq!(count, before + after_kill);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_calls_and_service_resumes_without_reopening() {
    let mut cluster = Cluster::single().await;
    // Short timeouts: calls retry for a second before reporting etcd unavailable.
    let options = EtcdOptions {
        request_timeout: Duration::from_secs(2),
        unavailable_retry: Duration::from_secs(1),
        ..test_options()
    };
    let store = EtcdStore::connect(&cluster.endpoints(), None, options.clone())
        .await
        .unwrap();
    let r1 = store.create("/outage/a", b("1")).await.unwrap();
    let mut watch = store.watch("/outage/", 0).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().unwrap().revision(), r1);

    cluster.kill(0);
    // The open watch ends with an error instead of hanging.
    match next(&mut watch).await {
        Some(Err(e)) => assert_transient(&e),
        other => panic!("the watch should end with Unavailable, got {other:?}"),
    }
    // Every call fails as transient, within a bound (the request timeout, and then some).
    let bound = options.request_timeout * 3;
    let within = |what: &'static str| {
        move |r: Result<Result<(), StoreError>, _>| match r {
            Ok(Err(e)) => assert_transient(&e),
            Ok(Ok(())) => panic!("{what} succeeded with etcd down"),
            Err(_) => panic!("{what} hung with etcd down"),
        }
    };
    within("get")(
        tokio::time::timeout(bound, async { store.get("/outage/a").await.map(drop) }).await,
    );
    within("range")(
        tokio::time::timeout(bound, async {
            store.range(prefix("/outage/")).await.map(drop)
        })
        .await,
    );
    within("create")(
        tokio::time::timeout(bound, async {
            store.create("/outage/b", b("2")).await.map(drop)
        })
        .await,
    );
    within("update")(
        tokio::time::timeout(bound, async {
            store.update("/outage/a", b("2"), r1).await.map(drop)
        })
        .await,
    );
    within("delete")(
        tokio::time::timeout(bound, async {
            store.delete("/outage/a", None).await.map(drop)
        })
        .await,
    );
    within("watch")(
        tokio::time::timeout(bound, async { store.watch("/outage/", 0).await.map(drop) }).await,
    );
    within("current_revision")(
        tokio::time::timeout(bound, async { store.current_revision().await.map(drop) }).await,
    );
    within("compacted_revision")(
        tokio::time::timeout(bound, async { store.compacted_revision().await.map(drop) }).await,
    );
    within("compact")(tokio::time::timeout(bound, async { store.compact(r1).await }).await);

    // etcd comes back (same data): the same store handle serves again.
    cluster.members[0].start();
    let got = eventually(WAIT, "get after restart", || store.get("/outage/a")).await;
    assert_eq!(
        got.map(|kv| (kv.value, kv.mod_revision)),
        Some((b("1"), r1))
    );
    let r2 = store.update("/outage/a", b("2"), r1).await.unwrap();
    assert_eq!(r2, r1 + 1, "nothing was written while etcd was down");
    let mut watch = store.watch("/outage/", r1).await.unwrap();
    let e = next(&mut watch).await.unwrap().unwrap();
    assert_eq!(
        (e.kind, e.revision(), e.kv.value.clone()),
        (EventKind::Put, r2, b("2"))
    );
    let r3 = store.create("/outage/c", b("3")).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().unwrap().revision(), r3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_names_every_endpoint_and_why_when_nothing_listens() {
    let (a, b) = (free_port(), free_port());
    let endpoints = vec![format!("127.0.0.1:{a}"), format!("http://127.0.0.1:{b}")];
    let err = EtcdStore::connect(&endpoints, None, test_options())
        .await
        .err();
    let Some(StoreError::Unavailable(msg)) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(msg.starts_with("cannot connect to etcd: "), "{msg}");
    for port in [a, b] {
        assert!(msg.contains(&format!("http://127.0.0.1:{port}: ")), "{msg}");
    }
    assert!(msg.contains("Connection refused"), "{msg}");
}

/// A CA, an etcd serving certificate for 127.0.0.1 and a client certificate it signed, written
/// to `dir`. etcd's own gateway dials etcd with the serving certificate, so that one is also
/// good for client authentication.
fn make_tls(dir: &std::path::Path, name: &str) -> TlsFiles {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
    let leaf = |sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "keelson-test");
        params.extended_key_usages = usages;
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".to_string(), "localhost".to_string()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    let (client_cert, client_key) = leaf(Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let files = TlsFiles {
        ca: dir.join(format!("{name}-ca.crt")),
        cert: dir.join(format!("{name}-server.crt")),
        key: dir.join(format!("{name}-server.key")),
        client_cert: dir.join(format!("{name}-client.crt")),
        client_key: dir.join(format!("{name}-client.key")),
    };
    std::fs::write(&files.ca, ca_cert.pem()).unwrap();
    std::fs::write(&files.cert, server_cert).unwrap();
    std::fs::write(&files.key, server_key).unwrap();
    std::fs::write(&files.client_cert, client_cert).unwrap();
    std::fs::write(&files.client_key, client_key).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_works_with_the_right_ca_and_fails_clearly_with_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let served = make_tls(dir.path(), "etcd");
    let stranger = make_tls(dir.path(), "other");
    let cluster = Cluster::single_tls(served.clone()).await;
    let endpoint = cluster.endpoints();
    assert!(endpoint[0].starts_with("https://"), "{endpoint:?}");

    let store = cluster.store().await;
    let r = store.create("/tls/a", b("secret")).await.unwrap();
    let mut watch = store.watch("/tls/", r - 1).await.unwrap();
    assert_eq!(
        next(&mut watch).await.unwrap().unwrap().kv.value,
        b("secret")
    );

    let wrong = EtcdTls::from_files(
        Some(&stranger.ca),
        Some(&served.client_cert),
        Some(&served.client_key),
    )
    .unwrap();
    let err = EtcdStore::connect(&endpoint, Some(wrong), test_options())
        .await
        .err();
    let Some(StoreError::Unavailable(msg)) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(msg.contains(&endpoint[0]), "{msg}");
    assert!(msg.contains("not signed by the given CA"), "{msg}");

    // Without the client certificate etcd requires, the handshake fails, and the message
    // says what is missing.
    let no_identity = EtcdTls::from_files(Some(&served.ca), None, None).unwrap();
    let err = EtcdStore::connect(&endpoint, Some(no_identity), test_options())
        .await
        .err();
    let Some(StoreError::Unavailable(msg)) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(msg.contains(&endpoint[0]), "{msg}");
    assert!(msg.contains("--etcd-certfile"), "{msg}");

    // Plain HTTP to a TLS port, and a missing CA file, are refused with the reason too.
    let plain = [endpoint[0].replace("https://", "http://")];
    let err = EtcdStore::connect(&plain, None, test_options()).await.err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
    let missing = EtcdTls::from_files(Some(&dir.path().join("nope.crt")), None, None).err();
    assert!(
        matches!(&missing, Some(StoreError::Internal(m)) if m.contains("nope.crt")),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_progress_request_reaches_every_open_watch() {
    let cluster = Cluster::single().await;
    let store = cluster.store().await;
    let r0 = store.current_revision().await.unwrap();
    let mut watches = Vec::new();
    for i in 0..20 {
        watches.push(store.watch(&format!("/many/{i}/"), r0).await.unwrap());
    }
    store.create("/many/3/x", b("x")).await.unwrap();
    let head = store.create("/elsewhere", b("y")).await.unwrap();
    store.request_progress().await.unwrap();
    for (i, w) in watches.iter_mut().enumerate() {
        let mut item = next(w).await.unwrap().unwrap();
        if i == 3 {
            assert_eq!(item.kind, EventKind::Put, "the owed event comes first");
            item = next(w).await.unwrap().unwrap();
        }
        assert_eq!(item.kind, EventKind::Progress, "watch {i}");
        assert!(
            item.revision() >= head,
            "watch {i}: progress at {}",
            item.revision()
        );
    }
    // Exactly one report per watch for one request.
    for w in &mut watches {
        assert!(
            tokio::time::timeout(Duration::from_millis(300), w.next())
                .await
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_automatic_compaction() {
    let cluster = Cluster::single().await;
    let options = EtcdOptions {
        auto_compaction: Some(CompactionPolicy {
            interval: Duration::from_millis(200),
            min_age: Duration::ZERO,
            min_revisions_behind: 5,
        }),
        ..test_options()
    };
    let key = options.compaction_key.clone();
    let a = EtcdStore::connect(&cluster.endpoints(), None, options.clone())
        .await
        .unwrap();
    let b_store = EtcdStore::connect(&cluster.endpoints(), None, options)
        .await
        .unwrap();
    let r0 = a.current_revision().await.unwrap();
    let mut turns = a.watch(&key, r0).await.unwrap();
    for round in 0..4 {
        for i in 0..10 {
            a.create(&format!("/auto/{round}/{i}"), b("v"))
                .await
                .unwrap();
        }
        let head = a.current_revision().await.unwrap();
        eventually(WAIT, "automatic compaction", || async {
            let compacted = b_store.compacted_revision().await?;
            if compacted >= head - 5 - 1 {
                Ok(compacted)
            } else {
                Err(StoreError::Unavailable(format!(
                    "compacted {compacted}, head {head}"
                )))
            }
        })
        .await;
    }
    let compactions = a.compactions() + b_store.compactions();
    assert!(compactions >= 4, "{compactions}");
    // Every compaction was preceded by its own winning write of the compaction key, with a
    // strictly higher target: no two stores compacted in the same round.
    let mut targets = Vec::new();
    while targets.len() < usize::try_from(compactions).unwrap() {
        let e = next(&mut turns).await.unwrap().unwrap();
        assert_eq!(e.kind, EventKind::Put);
        targets.push(
            String::from_utf8(e.kv.value.to_vec())
                .unwrap()
                .parse::<Revision>()
                .unwrap(),
        );
    }
    assert!(targets.windows(2).all(|w| w[0] < w[1]), "{targets:?}");
    // Reads below the compacted revision are gone, the latest state is intact.
    let compacted = a.compacted_revision().await.unwrap();
    assert_eq!(compacted, *targets.last().unwrap());
    let old = a
        .range(RangeRequest {
            revision: Some(r0),
            ..prefix("/auto/")
        })
        .await;
    assert_eq!(
        old,
        Err(StoreError::Compacted {
            requested: r0,
            compacted
        })
    );
    assert_eq!(a.range(prefix("/auto/")).await.unwrap().kvs.len(), 40);
}
