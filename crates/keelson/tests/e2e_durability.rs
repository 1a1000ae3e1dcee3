//! End-to-end durability: SIGKILL the server while 16 clients write, restart it, and find every
//! write that was acknowledged (HTTP 201) — with the exact content — and no torn objects.

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Cluster;
use serde_json::{Value, json};

const WRITERS: usize = 16;
const ROUNDS: usize = 3;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut c = Cluster::start();
    c.ok(&["create", "namespace", "crash"]);
    let mut acked: Vec<(String, String)> = Vec::new();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let round_acked = Arc::new(Mutex::new(Vec::new()));
        let cluster = &c;
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let stop = stop.clone();
                let round_acked = round_acked.clone();
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("r{round}-w{w}-{i}");
                        let payload = format!("{name}-{}", "x".repeat(200));
                        let body = serde_json::to_vec(&json!({
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name}, "data": {"payload": payload},
                        }))
                        .unwrap();
                        let (code, _) = cluster.curl(
                            "POST",
                            "/api/v1/namespaces/crash/configmaps",
                            Some(&body),
                            Some("application/json"),
                        );
                        if code == 201 {
                            round_acked.lock().unwrap().push((name, payload));
                        }
                        i += 1;
                    }
                });
            }
            // Let the writers get going, then pull the plug mid-flight.
            std::thread::sleep(Duration::from_millis(1500 + 700 * round as u64));
            if let Some(pid) = cluster.pid() {
                std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        });
        let got = round_acked.lock().unwrap().clone();
        assert!(
            !got.is_empty(),
            "round {round}: no write was acknowledged before the kill"
        );
        acked.extend(got);
        c.kill9_and_restart();

        // Every acknowledged write is there, whole.
        let list = c.get_json(&["configmaps", "-n", "crash"]);
        let stored: std::collections::HashMap<String, Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| common::made_by_test(i))
            .map(|i| {
                (
                    i["metadata"]["name"].as_str().unwrap().to_string(),
                    i.clone(),
                )
            })
            .collect();
        for (name, payload) in &acked {
            let obj = stored
                .get(name)
                .unwrap_or_else(|| panic!("acknowledged write {name} was lost (round {round})"));
            assert_eq!(
                obj["data"]["payload"].as_str(),
                Some(payload.as_str()),
                "{name} is torn"
            );
        }
        // And nothing is half-written: every stored object decodes with its full payload.
        for (name, obj) in &stored {
            let p = obj["data"]["payload"].as_str().unwrap_or_default();
            assert!(
                p.starts_with(name.as_str()) && p.len() == name.len() + 201,
                "{name} is torn: {obj}"
            );
        }
    }
    assert!(
        acked.len() >= WRITERS,
        "too few writes acknowledged to mean anything: {}",
        acked.len()
    );
}
