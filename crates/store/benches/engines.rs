//! The measurement that picked the embedded store's engine: the same store (group commit, MVCC
//! layout, watch hub) over SQLite (WAL, `synchronous=FULL`) and over redb (`Durability::Immediate`,
//! with and without quick-repair), with real fsyncs.
//!
//! Run: `cargo bench -p store --features redb --bench engines` (add `-- --quick` for a smoke
//! run). Prints a Markdown table; the figures are recorded in `src/embedded/mod.rs`.
//!
//! Measured, per engine (engines take turns round by round; figures are medians over rounds, or
//! percentiles over all samples):
//! * 16 concurrent writers creating keys with 300-byte JSON values on a fresh directory:
//!   creates/s, p50/p99 latency of one create, and the mean batch (writes per fsync);
//! * one sequential writer: creates/s and p50/p99; and its p50 on a store of 100,000 keys;
//! * a range read of 10,000 keys, at the latest revision and at an older one; point gets;
//! * open time of a directory holding 100,000 keys, after a clean close and after a SIGKILL in
//!   the middle of a write load (the directory is written by child processes of this binary).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::embedded::redb::RedbEngine;
use store::embedded::{EmbeddedOptions, EmbeddedStats, EmbeddedStore, SqliteEngine};
use store::{KvStore, RangeRequest};

#[derive(Clone, Copy, Debug)]
enum Variant {
    Sqlite,
    Redb { quick_repair: bool },
}

impl Variant {
    const ALL: [Variant; 3] = [
        Variant::Sqlite,
        Variant::Redb { quick_repair: true },
        Variant::Redb {
            quick_repair: false,
        },
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Sqlite => "sqlite",
            Variant::Redb { quick_repair: true } => "redb",
            Variant::Redb {
                quick_repair: false,
            } => "redb-no-quick-repair",
        }
    }

    fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

enum Store {
    Sqlite(Arc<EmbeddedStore<SqliteEngine>>),
    Redb(Arc<EmbeddedStore<RedbEngine>>),
}

impl Store {
    async fn open(variant: Variant, dir: &Path, options: EmbeddedOptions) -> Store {
        match variant {
            Variant::Sqlite => Store::Sqlite(
                EmbeddedStore::open_with(SqliteEngine::default(), dir, options)
                    .await
                    .expect("open sqlite"),
            ),
            Variant::Redb { quick_repair } => {
                let engine = RedbEngine {
                    quick_repair,
                    ..RedbEngine::default()
                };
                Store::Redb(
                    EmbeddedStore::open_with(engine, dir, options)
                        .await
                        .expect("open redb"),
                )
            }
        }
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        match self {
            Store::Sqlite(s) => s.clone(),
            Store::Redb(s) => s.clone(),
        }
    }

    fn stats(&self) -> EmbeddedStats {
        match self {
            Store::Sqlite(s) => s.stats(),
            Store::Redb(s) => s.stats(),
        }
    }

    async fn close(self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Redb(s) => s.close().await,
        }
    }
}

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        auto_compaction: None,
        ..EmbeddedOptions::default()
    }
}

/// A ConfigMap-like JSON value of exactly 300 bytes.
fn value(key: &str) -> Bytes {
    let head = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{key}","namespace":"default"}},"data":{{"x":""#
    );
    let tail = r#""}}"#;
    let pad = 300usize.saturating_sub(head.len() + tail.len());
    Bytes::from(format!("{head}{}{tail}", "x".repeat(pad)))
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&mut self, p: f64) -> Duration {
        self.0.sort_unstable();
        let last = self.0.len().saturating_sub(1);
        let index = ((last as f64) * p).round() as usize;
        self.0.get(index).copied().unwrap_or_default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `writers` tasks each creating `per_writer` keys; returns (creates/s, latencies).
async fn create_load(
    store: &Arc<dyn KvStore>,
    prefix: &str,
    writers: usize,
    per_writer: usize,
) -> (f64, Latencies) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_writer);
                for n in 0..per_writer {
                    let key = format!("{prefix}w{w:02}-{n:06}");
                    let value = value(&key);
                    let t = Instant::now();
                    store.create(&key, value).await.expect("create");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(writers * per_writer);
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, Latencies(all))
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort_unstable();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Figures {
    concurrent_rates: Vec<f64>,
    concurrent_latencies: Vec<Duration>,
    batches: Vec<f64>,
    sequential_rates: Vec<f64>,
    sequential_latencies: Vec<Duration>,
    range_latest: Vec<Duration>,
    range_old: Vec<Duration>,
    gets: Vec<Duration>,
    open_clean: Vec<Duration>,
    open_after_kill: Vec<Duration>,
    big_sequential_latencies: Vec<Duration>,
    big_size: u64,
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// One round of the write measurements on a fresh directory.
async fn write_round(variant: Variant, f: &mut Figures, concurrent_ops: usize, sequential: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(variant, dir.path(), options()).await;
    let kv = store.kv();
    let (rate, lat) = create_load(&kv, "/bench/c/", 16, concurrent_ops / 16).await;
    let stats = store.stats();
    f.batches
        .push(stats.writes as f64 / stats.commits.max(1) as f64);
    f.concurrent_rates.push(rate);
    f.concurrent_latencies.extend(lat.0);
    let (rate, lat) = create_load(&kv, "/bench/s/", 1, sequential).await;
    f.sequential_rates.push(rate);
    f.sequential_latencies.extend(lat.0);
    drop(kv);
    store.close().await;
}

/// A store with 10,000 keys, each updated once; returns it and the revision before the updates.
async fn read_setup(variant: Variant) -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(variant, dir.path(), options()).await;
    let kv = store.kv();
    create_load(&kv, "/bench/r/", 16, 10_000 / 16).await;
    let old = kv.current_revision().await.expect("revision");
    let all = kv
        .range(RangeRequest {
            prefix: "/bench/r/".into(),
            ..RangeRequest::default()
        })
        .await
        .expect("range");
    assert_eq!(all.kvs.len(), 10_000);
    for chunk in all.kvs.chunks(625) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|item| {
                let (kv, item) = (kv.clone(), item.clone());
                tokio::spawn(async move {
                    kv.update(&item.key, value(&item.key), item.mod_revision)
                        .await
                        .expect("update")
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("update task");
        }
    }
    (dir, store, old)
}

async fn read_round(store: &Store, old: i64, f: &mut Figures) {
    let kv = store.kv();
    for (revision, runs) in [(None, &mut f.range_latest), (Some(old), &mut f.range_old)] {
        let t = Instant::now();
        let resp = kv
            .range(RangeRequest {
                prefix: "/bench/r/".into(),
                revision,
                ..RangeRequest::default()
            })
            .await
            .expect("range");
        runs.push(t.elapsed());
        assert_eq!(resp.kvs.len(), 10_000);
    }
    for n in (0..16).map(|w| w * 39) {
        let key = format!("/bench/r/w{:02}-{n:06}", n % 16);
        let t = Instant::now();
        kv.get(&key).await.expect("get").expect("present");
        f.gets.push(t.elapsed());
    }
}

/// Runs this binary as a child that writes `n` keys under `prefix` into `dir`, then closes or
/// SIGKILLs itself.
fn populate_child(variant: Variant, dir: &Path, n: usize, prefix: &str, kill: bool) {
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--populate", variant.name()])
        .arg(dir)
        .arg(n.to_string())
        .arg(prefix)
        .arg(if kill { "kill" } else { "close" })
        .status()
        .expect("spawn populate child");
    assert_eq!(status.success(), !kill, "populate child: {status}");
}

/// Open times of a directory with `keys` keys, after clean closes and after SIGKILLs during a
/// write load; and sequential write latency on that large store.
async fn open_rounds(variant: Variant, keys: usize, rounds: usize, f: &mut Figures) {
    let dir = tempfile::tempdir().expect("tempdir");
    populate_child(variant, dir.path(), keys, "/registry/configmaps/a/", false);
    f.big_size = dir_size(dir.path());
    let mut expected = i64::try_from(keys).expect("key count fits");
    for round in 0..rounds {
        let t = Instant::now();
        let store = Store::open(variant, dir.path(), options()).await;
        f.open_clean.push(t.elapsed());
        let kv = store.kv();
        assert_eq!(kv.current_revision().await.expect("revision"), expected);
        if round == 0 {
            let (_, lat) = create_load(&kv, "/bench/big/", 1, 300).await;
            f.big_sequential_latencies.extend(lat.0);
            expected += 300;
        }
        drop(kv);
        store.close().await;
    }
    for round in 0..rounds {
        let prefix = format!("/registry/configmaps/k{round}/");
        populate_child(variant, dir.path(), 2_048, &prefix, true);
        let t = Instant::now();
        let store = Store::open(variant, dir.path(), options()).await;
        f.open_after_kill.push(t.elapsed());
        let head = store.kv().current_revision().await.expect("revision");
        assert!(head >= expected + 2_048, "acknowledged writes survive");
        expected = head;
        store.close().await;
    }
}

/// Child process: write `n` keys under `prefix`, then close cleanly or SIGKILL itself.
async fn populate(variant: Variant, dir: &Path, n: usize, prefix: &str, ending: &str) {
    let store = Store::open(
        variant,
        dir,
        EmbeddedOptions {
            max_batch: 1024,
            ..options()
        },
    )
    .await;
    let kv = store.kv();
    let writers = 64;
    create_load(&kv, prefix, writers, n / writers).await;
    create_load(&kv, &format!("{prefix}rest/"), 1, n % writers).await;
    if ending == "kill" {
        // A real SIGKILL: no destructor, no close, no flush.
        let me = std::process::id().to_string();
        let _ = Command::new("kill").args(["-9", &me]).status();
        std::thread::sleep(Duration::from_secs(60));
    }
    store.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let [_, flag, variant, dir, n, prefix, ending] = args.as_slice()
        && flag == "--populate"
    {
        let variant = Variant::parse(variant).expect("variant");
        let n = n.parse().expect("key count");
        runtime.block_on(populate(variant, Path::new(dir), n, prefix, ending));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<Variant> = args.iter().filter_map(|a| Variant::parse(a)).collect();
    let variants = if only.is_empty() {
        Variant::ALL.to_vec()
    } else {
        only
    };
    // Engines take turns, round by round, so that load from other processes on this shared
    // machine spreads over all of them instead of skewing one; figures are medians.
    let (rounds, concurrent_ops, sequential_ops, open_keys) = if quick {
        (2, 1_600, 200, 10_000)
    } else {
        (5, 4_000, 500, 100_000)
    };
    let mut figures: Vec<Figures> = variants.iter().map(|_| Figures::default()).collect();
    runtime.block_on(async {
        for _ in 0..rounds {
            for (v, f) in variants.iter().zip(&mut figures) {
                write_round(*v, f, concurrent_ops, sequential_ops).await;
            }
        }
        let mut setups = Vec::new();
        for v in &variants {
            setups.push(read_setup(*v).await);
        }
        for _ in 0..rounds * 3 {
            for ((_, store, old), f) in setups.iter().zip(&mut figures) {
                read_round(store, *old, f).await;
            }
        }
        for (_, store, _) in setups {
            store.close().await;
        }
        for (v, f) in variants.iter().zip(&mut figures) {
            open_rounds(*v, open_keys, 3, f).await;
        }
    });
    println!(
        "| engine | 16 writers creates/s | p50 ms | p99 ms | writes/fsync | 1 writer creates/s \
         | p50 ms | p99 ms | 1 writer p50 ms, 100k keys | range 10k latest ms \
         | range 10k old rev ms | get p50 ms | open 100k clean ms | open 100k after kill ms \
         | size 100k MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (v, f) in variants.iter().zip(figures) {
        let mut concurrent = Latencies(f.concurrent_latencies);
        let mut sequential = Latencies(f.sequential_latencies);
        let mut big = Latencies(f.big_sequential_latencies);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} \
             | {:.3} | {:.1} | {:.1} | {:.1} |",
            v.name(),
            median_f64(f.concurrent_rates),
            ms(concurrent.percentile(0.5)),
            ms(concurrent.percentile(0.99)),
            median_f64(f.batches),
            median_f64(f.sequential_rates),
            ms(sequential.percentile(0.5)),
            ms(sequential.percentile(0.99)),
            ms(big.percentile(0.5)),
            ms(median(f.range_latest)),
            ms(median(f.range_old)),
            ms(Latencies(f.gets).percentile(0.5)),
            ms(median(f.open_clean)),
            ms(median(f.open_after_kill)),
            f.big_size as f64 / (1024.0 * 1024.0),
        );
    }
}
