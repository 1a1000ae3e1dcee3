//! End-to-end: the Job, CronJob and TTL-after-finished controllers inside `keelson server`,
//! driven with the real kubectl. No containers run: there are no nodes, so pods stay
//! Pending and the test plays the kubelet by writing pod status through the status
//! subresource (phase, and container exit codes for the pod failure policy).

// Integration tests unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Cluster;
use common::hollow::Simulator;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn job_pods(c: &Cluster, job: &str) -> Vec<Value> {
    let sel = format!("batch.kubernetes.io/job-name={job}");
    let mut pods: Vec<Value> = c.get_json(&["pods", "-l", &sel])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    pods.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    pods
}

fn active_pods(c: &Cluster, job: &str) -> Vec<Value> {
    job_pods(c, job)
        .into_iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        })
        .collect()
}

fn has_tracking_finalizer(p: &Value) -> bool {
    p["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "batch.kubernetes.io/job-tracking"))
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap().to_string()
}

/// Plays the kubelet: the pod's only container exited with `exit_code`.
fn finish(c: &Cluster, pod: &str, exit_code: i32) {
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    let patch = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": reason}},
        }],
    }});
    c.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

fn job_manifest(name: &str, spec: Value) -> String {
    let mut spec = spec;
    spec["template"] = json!({"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
    }});
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec})
        .to_string()
}

fn job(c: &Cluster, name: &str) -> Value {
    c.get_json(&["job", name])
}

fn wait_pods(c: &Cluster, job_name: &str, n: usize) -> Vec<Value> {
    c.eventually(WAIT, &format!("{n} active pods of {job_name}"), || {
        active_pods(c, job_name).len() == n
    });
    active_pods(c, job_name)
}

fn reason_of_events(c: &Cluster, kind: &str, obj: &str) -> Vec<String> {
    let sel = format!("involvedObject.kind={kind},involvedObject.name={obj}");
    c.get_json(&["events", "--field-selector", &sel])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds.
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn parse_rfc3339(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    days_from_civil(n(0..4), n(5..7), n(8..10)) * 86_400
        + n(11..13) * 3600
        + n(14..16) * 60
        + n(17..19)
}

#[test]
fn jobs_complete_fail_and_hit_deadlines() {
    let c = Cluster::start();

    // Success: 3 completions, 2 at a time.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("ok", json!({"completions": 3, "parallelism": 2})),
    );
    let pods = wait_pods(&c, "ok", 2);
    for p in &pods {
        assert_eq!(
            p["metadata"]["finalizers"],
            json!(["batch.kubernetes.io/job-tracking"])
        );
        assert!(name(p).starts_with("ok-"), "{}", name(p));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    }
    c.eventually(WAIT, "status.active 2", || {
        job(&c, "ok")["status"]["active"] == 2
    });
    assert!(job(&c, "ok")["status"]["startTime"].is_string());
    for p in &pods {
        finish(&c, &name(p), 0);
    }
    // Only one more: 3 completions minus 2 succeeded.
    let third = wait_pods(&c, "ok", 1);
    c.eventually(WAIT, "2 succeeded", || {
        job(&c, "ok")["status"]["succeeded"] == 2
    });
    assert_eq!(active_pods(&c, "ok").len(), 1);
    finish(&c, &name(&third[0]), 0);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/ok",
        "--timeout=30s",
    ]);
    let j = job(&c, "ok");
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["active"], 0);
    assert!(j["status"]["completionTime"].is_string());
    assert_eq!(condition(&j, "SuccessCriteriaMet")["status"], "True");
    assert_eq!(condition(&j, "Complete")["status"], "True");
    assert_eq!(condition(&j, "Complete")["reason"], "CompletionsReached");
    assert_eq!(
        condition(&j, "SuccessCriteriaMet")["message"],
        "Reached expected number of succeeded pods"
    );
    assert!(
        j["status"]["uncountedTerminatedPods"]["succeeded"].is_null(),
        "{j}"
    );
    let table = c.ok(&["get", "jobs", "ok"]);
    assert!(table.contains("3/3"), "{table}");
    // Counted pods lose their finalizer.
    c.eventually(WAIT, "finalizers removed", || {
        job_pods(&c, "ok")
            .iter()
            .all(|p| !has_tracking_finalizer(p))
    });
    c.eventually(WAIT, "events", || {
        let reasons = reason_of_events(&c, "Job", "ok");
        reasons.iter().any(|r| r == "Completed") && reasons.iter().any(|r| r == "SuccessfulCreate")
    });

    // Failure: two failed pods exceed backoffLimit 1.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "bad",
            json!({"completions": 2, "parallelism": 2, "backoffLimit": 1}),
        ),
    );
    for p in wait_pods(&c, "bad", 2) {
        finish(&c, &name(&p), 1);
    }
    c.ok(&["wait", "--for=condition=failed", "job/bad", "--timeout=30s"]);
    let j = job(&c, "bad");
    assert_eq!(condition(&j, "Failed")["reason"], "BackoffLimitExceeded");
    assert_eq!(
        condition(&j, "Failed")["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(
        condition(&j, "FailureTarget")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(j["status"]["failed"], 2);
    assert!(j["status"]["completionTime"].is_null());
    c.eventually(WAIT, "BackoffLimitExceeded event", || {
        reason_of_events(&c, "Job", "bad")
            .iter()
            .any(|r| r == "BackoffLimitExceeded")
    });

    // A pod failure policy's FailJob rule ends the Job at the first matching exit code,
    // whatever the backoff limit.
    let mut manifest: Value = serde_json::from_str(&job_manifest(
        "policy",
        json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
        ]}}),
    ))
    .unwrap();
    manifest["metadata"]["name"] = json!("policy");
    c.ok_stdin(&["apply", "-f", "-"], &manifest.to_string());
    let first = wait_pods(&c, "policy", 1);
    // Exit code 3 is ignored: not counted, replaced after the usual backoff.
    finish(&c, &name(&first[0]), 3);
    c.eventually(WAIT, "a replacement pod", || {
        active_pods(&c, "policy")
            .iter()
            .any(|p| name(p) != name(&first[0]))
    });
    assert!(job(&c, "policy")["status"]["failed"].as_i64().unwrap_or(0) == 0);
    let second = active_pods(&c, "policy");
    finish(&c, &name(&second[0]), 42);
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/policy",
        "--timeout=30s",
    ]);
    let j = job(&c, "policy");
    assert_eq!(condition(&j, "Failed")["reason"], "PodFailurePolicy");
    let msg = condition(&j, "Failed")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        msg,
        format!(
            "Container c for pod default/{} failed with exit code 42 matching FailJob rule at index 1",
            name(&second[0])
        )
    );
    assert_eq!(j["status"]["failed"], 1);

    // activeDeadlineSeconds: the running pods are deleted and the Job fails.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "slow",
            json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 2}),
        ),
    );
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/slow",
        "--timeout=30s",
    ]);
    let j = job(&c, "slow");
    assert_eq!(condition(&j, "Failed")["reason"], "DeadlineExceeded");
    assert_eq!(
        condition(&j, "Failed")["message"],
        "Job was active longer than specified deadline"
    );
    assert_eq!(j["status"]["active"], 0);
    c.eventually(WAIT, "deadline pods gone", || {
        job_pods(&c, "slow").is_empty()
    });
}

#[test]
fn time_helpers_round_trip() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_735_725_900), "2025-01-01T10:05:00Z");
    assert_eq!(parse_rfc3339("2025-01-01T10:05:00Z"), 1_735_725_900);
    assert_eq!(parse_rfc3339(&rfc3339(951_782_400)), 951_782_400); // 2000-02-29
}

#[test]
fn jobs_on_hollow_nodes_count_running_and_terminating_pods() {
    let c = Cluster::start();
    let _sim = Simulator::start(&c, &["--nodes", "2"]);
    c.eventually(WAIT, "two Ready hollow nodes", || {
        c.get_json(&["nodes"])["items"]
            .as_array()
            .is_some_and(|ns| {
                ns.len() == 2 && ns.iter().all(|n| condition(n, "Ready")["status"] == "True")
            })
    });
    let mut manifest: Value = serde_json::from_str(&job_manifest(
        "hollow",
        json!({"completions": 4, "parallelism": 2, "activeDeadlineSeconds": 8}),
    ))
    .unwrap();
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1);
    c.ok_stdin(&["apply", "-f", "-"], &manifest.to_string());
    // Scheduled onto the hollow nodes, running and ready: counted as ready.
    c.eventually(WAIT, "2 ready pods", || {
        let j = job(&c, "hollow");
        j["status"]["ready"] == 2 && j["status"]["active"] == 2
    });
    assert!(
        job_pods(&c, "hollow")
            .iter()
            .all(|p| p["spec"]["nodeName"].is_string())
    );
    // At the deadline the running pods are deleted gracefully (the hollow kubelet finishes
    // the deletion); the Job is Failed only once none is left terminating, and the killed
    // pods count as failed.
    c.ok(&[
        "wait",
        "--for=condition=failed",
        "job/hollow",
        "--timeout=30s",
    ]);
    let j = job(&c, "hollow");
    assert_eq!(condition(&j, "Failed")["reason"], "DeadlineExceeded");
    assert_eq!(condition(&j, "FailureTarget")["reason"], "DeadlineExceeded");
    assert_eq!(j["status"]["terminating"], 0);
    assert_eq!(j["status"]["active"], 0);
    assert_eq!(j["status"]["ready"], 0);
    assert_eq!(j["status"]["failed"], 2);
    assert!(job_pods(&c, "hollow").is_empty());
}

#[test]
fn indexed_and_suspended_jobs() {
    let mut c = Cluster::start();

    // A restart mid-run: the new controller term picks up where the old one was, without
    // duplicate pods (informers list before any sync; the status and pods are the truth).
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("survivor", json!({"completions": 3, "parallelism": 2})),
    );
    let before = wait_pods(&c, "survivor", 2);
    c.restart();
    finish(&c, &name(&before[0]), 0);
    c.eventually(WAIT, "a replacement after the restart", || {
        let all = job_pods(&c, "survivor");
        all.len() == 3 && active_pods(&c, "survivor").len() == 2
    });
    for p in active_pods(&c, "survivor") {
        finish(&c, &name(&p), 0);
    }
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/survivor",
        "--timeout=30s",
    ]);
    assert_eq!(job_pods(&c, "survivor").len(), 3, "no duplicate pods");
    assert_eq!(job(&c, "survivor")["status"]["succeeded"], 3);

    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "idx",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    );
    let pods = wait_pods(&c, "idx", 3);
    let mut by_index = std::collections::BTreeMap::new();
    for p in &pods {
        let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            ix.as_str()
        );
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}"));
        assert!(name(p).starts_with(&format!("idx-{ix}-")), "{}", name(p));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        by_index.insert(ix, name(p));
    }
    assert_eq!(
        by_index.keys().cloned().collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    finish(&c, &by_index["0"], 0);
    finish(&c, &by_index["2"], 0);
    c.eventually(WAIT, "completedIndexes 0,2", || {
        job(&c, "idx")["status"]["completedIndexes"] == "0,2"
    });
    assert_eq!(job(&c, "idx")["status"]["succeeded"], 2);
    // A failed index is recreated under the same index.
    finish(&c, &by_index["1"], 1);
    c.eventually(WAIT, "index 1 recreated", || {
        active_pods(&c, "idx").iter().any(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"
        })
    });
    let again = active_pods(&c, "idx");
    assert_eq!(again.len(), 1);
    finish(&c, &name(&again[0]), 0);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/idx",
        "--timeout=30s",
    ]);
    let j = job(&c, "idx");
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["failed"], 1);

    // A success policy ends an Indexed Job early: index 0 is all that is needed; the other
    // pods are deleted and the Job completes with reason SuccessPolicy.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "early",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed",
                   "successPolicy": {"rules": [{"succeededIndexes": "0"}]}}),
        ),
    );
    let pods = wait_pods(&c, "early", 3);
    let zero = pods
        .iter()
        .find(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0")
        .unwrap();
    finish(&c, &name(zero), 0);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/early",
        "--timeout=30s",
    ]);
    let j = job(&c, "early");
    assert_eq!(
        condition(&j, "SuccessCriteriaMet")["reason"],
        "SuccessPolicy"
    );
    assert_eq!(
        condition(&j, "Complete")["message"],
        "Matched rules at index 0"
    );
    assert_eq!(j["status"]["completedIndexes"], "0");
    c.eventually(WAIT, "the other indexes' pods deleted", || {
        active_pods(&c, "early").is_empty()
    });

    // Suspended from the start: no pods, no start time, Suspended=True.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest(
            "sus",
            json!({"completions": 2, "parallelism": 2, "suspend": true}),
        ),
    );
    c.eventually(WAIT, "Suspended condition", || {
        condition(&job(&c, "sus"), "Suspended")["status"] == "True"
    });
    let j = job(&c, "sus");
    assert_eq!(condition(&j, "Suspended")["reason"], "JobSuspended");
    assert!(j["status"]["startTime"].is_null());
    assert!(job_pods(&c, "sus").is_empty());
    // Resume: pods start, the condition turns False.
    c.ok(&[
        "patch",
        "job",
        "sus",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    wait_pods(&c, "sus", 2);
    c.eventually(WAIT, "resumed", || {
        let j = job(&c, "sus");
        condition(&j, "Suspended")["status"] == "False" && j["status"]["startTime"].is_string()
    });
    assert_eq!(
        condition(&job(&c, "sus"), "Suspended")["reason"],
        "JobResumed"
    );
    // Suspend again: running pods are deleted (not counted as failures).
    c.ok(&[
        "patch",
        "job",
        "sus",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    c.eventually(WAIT, "suspended pods deleted", || {
        job_pods(&c, "sus").is_empty()
    });
    c.eventually(WAIT, "suspended again", || {
        let j = job(&c, "sus");
        condition(&j, "Suspended")["status"] == "True" && j["status"]["active"] == 0
    });
    assert!(job(&c, "sus")["status"]["failed"].is_null());
    c.eventually(WAIT, "Suspended/Resumed events", || {
        let r = reason_of_events(&c, "Job", "sus");
        r.iter().any(|x| x == "Suspended") && r.iter().any(|x| x == "Resumed")
    });
}

#[test]
fn cronjobs_fire_and_finished_jobs_expire() {
    let c = Cluster::start();

    // TTL: a finished Job with ttlSecondsAfterFinished=1 is deleted.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &job_manifest("ttl", json!({"ttlSecondsAfterFinished": 1})),
    );
    let p = wait_pods(&c, "ttl", 1);
    finish(&c, &name(&p[0]), 0);
    c.eventually(WAIT, "ttl job deleted", || {
        !c.kubectl(&["get", "job", "ttl"]).status.success()
    });
    // It did finish first (its Completed event outlives it).
    c.eventually(WAIT, "the ttl job's Completed event", || {
        reason_of_events(&c, "Job", "ttl")
            .iter()
            .any(|r| r == "Completed")
    });

    // A CronJob created suspended, whose status says it last ran five minutes ago: resuming
    // it catches up the missed start time at once (no waiting for the clock). It runs once an
    // hour, at the minute two minutes ago, so no second run starts while the test looks
    // (which `*/1` would do at the next minute boundary).
    let start_minute = unix_now() / 60 - 2;
    let schedule = format!("{} * * * *", start_minute % 60);
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": schedule, "timeZone": "Etc/UTC", "suspend": true,
                 "successfulJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"from": "tick"}}, "spec": {"template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    c.ok_stdin(&["apply", "-f", "-"], &cj.to_string());
    // Three minutes before the start time.
    let past = (start_minute - 3) * 60;
    c.ok(&[
        "patch",
        "cronjob",
        "tick",
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({"status": {"lastScheduleTime": rfc3339(past)}}).to_string(),
    ]);
    // `kubectl create job --from` works meanwhile and is not an active scheduled run.
    c.ok(&["create", "job", "manual", "--from=cronjob/tick"]);
    let manual = job(&c, "manual");
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    c.ok(&[
        "patch",
        "cronjob",
        "tick",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    let mut fired = String::new();
    c.eventually(WAIT, "a scheduled job", || {
        let cj = c.get_json(&["cronjob", "tick"]);
        match cj["status"]["active"].as_array().and_then(|a| a.first()) {
            Some(r) => {
                fired = r["name"].as_str().unwrap_or("").to_string();
                true
            }
            None => false,
        }
    });
    let cj = c.get_json(&["cronjob", "tick"]);
    let scheduled = parse_rfc3339(cj["status"]["lastScheduleTime"].as_str().unwrap());
    assert_eq!(scheduled, start_minute * 60);
    assert_eq!(fired, format!("tick-{}", scheduled / 60));
    let j = job(&c, &fired);
    assert_eq!(j["metadata"]["labels"]["from"], "tick");
    assert_eq!(
        j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        rfc3339(scheduled)
    );
    assert_eq!(j["metadata"]["ownerReferences"][0]["name"], "tick");
    let listed = c.ok(&["get", "cronjobs", "tick"]);
    assert!(listed.contains(&schedule), "{listed}");
    // The scheduled run finishes: it leaves status.active and sets lastSuccessfulTime.
    let p = wait_pods(&c, &fired, 1);
    finish(&c, &name(&p[0]), 0);
    c.eventually(WAIT, "cronjob saw the completed job", || {
        let cj = c.get_json(&["cronjob", "tick"]);
        cj["status"]["active"].is_null() && cj["status"]["lastSuccessfulTime"].is_string()
    });
    c.eventually(WAIT, "cronjob events", || {
        let r = reason_of_events(&c, "CronJob", "tick");
        r.iter().any(|x| x == "SuccessfulCreate") && r.iter().any(|x| x == "SawCompletedJob")
    });
    // The manual run finishing too leaves two successful Jobs; the history limit keeps the
    // newer one (the manual run started first).
    let p = wait_pods(&c, "manual", 1);
    finish(&c, &name(&p[0]), 0);
    c.eventually(WAIT, "history limit applied", || {
        let jobs = c.get_json(&["jobs", "-l", "from=tick"]);
        let names: Vec<String> = jobs["items"].as_array().unwrap().iter().map(name).collect();
        names == [fired.clone()]
    });
    c.eventually(WAIT, "SuccessfulDelete event", || {
        reason_of_events(&c, "CronJob", "tick")
            .iter()
            .any(|x| x == "SuccessfulDelete")
    });
}
