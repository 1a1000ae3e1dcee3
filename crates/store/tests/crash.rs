//! Crash test: every acknowledged write survives SIGKILL, and the store is consistent afterwards.
//!
//! The test binary re-runs itself as a child (`crash_child`, selected by an environment
//! variable) that opens the store and runs 16 concurrent writers, printing a line for each write
//! as soon as it is acknowledged. The parent SIGKILLs the child at a random moment — sometimes
//! while it is still opening the store, usually in the middle of the write load — and repeats
//! this for several rounds on the same directory. After each round it reopens the store and
//! checks that every acknowledged write is there with the right value and revision, that the
//! counters the writers update are at least at their last acknowledged value, and that the
//! history replayed by a watch from revision 0 is gap-free and rebuilds exactly the current state.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use store::embedded::{EmbeddedOptions, EmbeddedStore};
use store::{EventKind, KeyValue, KvStore, RangeRequest, Revision};

const CHILD_DIR: &str = "KEELSON_STORE_CRASH_DIR";
const CHILD_ROUND: &str = "KEELSON_STORE_CRASH_ROUND";
const ROUNDS: usize = 12;
const WRITERS: usize = 16;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        auto_compaction: None,
        ..EmbeddedOptions::default()
    }
}

/// The value written for `key`'s `n`th write: derived from both, so the parent can check it.
fn value(key: &str, n: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"key":"{key}","n":{n},"pad":"{}"}}"#,
        "x".repeat(200)
    ))
}

/// The child: writes until it is killed. Passes trivially when run as a normal test.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = EmbeddedStore::open(Path::new(&dir), options())
            .await
            .expect("child: open");
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                let round = round.clone();
                let round_base = round.parse::<u64>().expect("round number") * 1_000_000;
                tokio::spawn(async move {
                    let counter = format!("/crash/counters/w{w:02}");
                    let mut counter_rev = match store.get(&counter).await.expect("get") {
                        Some(kv) => kv.mod_revision,
                        None => store
                            .create(&counter, value(&counter, 0))
                            .await
                            .expect("create"),
                    };
                    for n in 1..=100_000u64 {
                        let key = format!("/crash/r{round}/w{w:02}/{n:06}");
                        let rev = store.create(&key, value(&key, 0)).await.expect("create");
                        // One write per line; stdout is line-buffered and a line is far below
                        // PIPE_BUF, so a printed line reaches the parent whole or not at all.
                        println!("ACK {key} {rev}");
                        if n % 4 == 0 {
                            // Counter values grow across rounds too.
                            let c = round_base + n;
                            counter_rev = store
                                .update(&counter, value(&counter, c), counter_rev)
                                .await
                                .expect("update counter");
                            println!("CTR {counter} {c} {counter_rev}");
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
    });
}

#[derive(Default)]
struct Acknowledged {
    /// Created keys and the revision each create was acknowledged with.
    created: BTreeMap<String, Revision>,
    /// Highest acknowledged `n` per counter key.
    counters: BTreeMap<String, u64>,
    max_revision: Revision,
}

impl Acknowledged {
    fn record(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        let parse = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("bad line {line:?}")) };
        match parts.as_slice() {
            ["ACK", key, rev] => {
                let rev = parse(rev);
                assert!(
                    self.created.insert((*key).to_owned(), rev).is_none(),
                    "{key} twice"
                );
                self.max_revision = self.max_revision.max(rev);
            }
            ["CTR", key, n, rev] => {
                let n = u64::try_from(parse(n)).unwrap_or(0);
                let entry = self.counters.entry((*key).to_owned()).or_default();
                *entry = (*entry).max(n);
                self.max_revision = self.max_revision.max(parse(rev));
            }
            _ => {} // libtest's own output
        }
    }
}

/// Runs one child and kills it; returns the complete lines it printed.
fn crash_round(dir: &Path, round: usize, rng: &mut impl Rng) -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // A line cut short by the kill has no newline; it was never fully printed.
                Ok(_) if buf.last() == Some(&b'\n') => {
                    let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
                Ok(_) => break,
            }
        }
    });
    let mut lines = Vec::new();
    if round % 2 == 1 {
        // Kill at a random moment from the start: possibly while the store is opening or
        // recovering.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
    } else {
        // Wait for the load to be under way, then kill in the middle of it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lines.iter().any(|l: &String| l.starts_with("ACK ")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => panic!("round {round}: the child acknowledged nothing in 30 s"),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "round {round}: the child was killed");
    reader.join().expect("reader thread");
    lines.extend(lines_rx.try_iter());
    lines
}

/// Reopens the store and checks it against everything acknowledged so far.
async fn verify(dir: &Path, acked: &Acknowledged) {
    let store = EmbeddedStore::open(dir, options()).await.expect("reopen");
    let current = store.current_revision().await.expect("current");
    assert!(
        current >= acked.max_revision,
        "current revision {current} is behind an acknowledged write at {}",
        acked.max_revision
    );
    assert_eq!(store.compacted_revision().await, Ok(0));

    let all = store
        .range(RangeRequest {
            prefix: "/crash/".into(),
            ..RangeRequest::default()
        })
        .await
        .expect("range");
    assert_eq!(all.revision, current);
    let state: BTreeMap<&str, &KeyValue> = all.kvs.iter().map(|kv| (kv.key.as_str(), kv)).collect();
    assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key), "key order");
    for (key, rev) in &acked.created {
        let kv = state
            .get(key.as_str())
            .unwrap_or_else(|| panic!("acknowledged key {key} (revision {rev}) was lost"));
        assert_eq!((kv.create_revision, kv.mod_revision), (*rev, *rev), "{key}");
        assert_eq!(kv.value, value(key, 0), "{key}");
    }
    for (key, n) in &acked.counters {
        let kv = state
            .get(key.as_str())
            .unwrap_or_else(|| panic!("counter {key} was lost"));
        let stored: serde_like::Counter = serde_like::parse(&kv.value);
        assert!(
            stored.n >= *n,
            "{key} is at {} but {n} was acknowledged",
            stored.n
        );
        assert_eq!(kv.value, value(key, stored.n), "{key}");
    }
    for kv in &all.kvs {
        assert!(0 < kv.create_revision && kv.create_revision <= kv.mod_revision);
        assert!(kv.mod_revision <= current);
    }

    // Replaying history from 0 yields every revision once, in order, and rebuilds the state.
    let mut replayed: BTreeMap<String, KeyValue> = BTreeMap::new();
    if current > 0 {
        let mut w = store.watch("/crash/", 0).await.expect("watch");
        let mut expected = 1;
        while expected <= current {
            let event = tokio::time::timeout(Duration::from_secs(20), w.next())
                .await
                .expect("replay in time")
                .expect("watch open")
                .expect("replay event");
            assert_eq!(
                event.revision(),
                expected,
                "replay is gap-free and in order"
            );
            expected += 1;
            match event.kind {
                EventKind::Put => {
                    replayed.insert(event.kv.key.clone(), event.kv);
                }
                EventKind::Delete => {
                    replayed.remove(&event.kv.key);
                }
                EventKind::Progress => unreachable!("no progress was requested"),
            }
        }
    }
    let replayed: Vec<KeyValue> = replayed.into_values().collect();
    assert_eq!(
        replayed, all.kvs,
        "replayed history matches the current state"
    );
    store.close().await;
}

/// Just enough parsing of the counter value to read `n` back.
mod serde_like {
    pub struct Counter {
        pub n: u64,
    }

    pub fn parse(value: &[u8]) -> Counter {
        let text = std::str::from_utf8(value).expect("utf-8 value");
        let n = text
            .split(r#""n":"#)
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("counter value {text:?}"));
        Counter { n }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rng = rand::rng();
    let mut acked = Acknowledged::default();
    let mut summary = Vec::new();
    for round in 0..ROUNDS {
        let lines = crash_round(dir.path(), round, &mut rng);
        let before = acked.created.len();
        for line in &lines {
            acked.record(line);
        }
        summary.push(acked.created.len() - before);
        runtime.block_on(verify(dir.path(), &acked));
    }
    let mut out = std::io::stderr();
    let _ = writeln!(out, "acknowledged creates per round: {summary:?}");
    let total: usize = summary.iter().sum();
    assert!(total > 0, "the children acknowledged no writes at all");
}
