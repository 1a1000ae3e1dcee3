//! The few API calls the scheduling benchmark makes besides its timed creates: nodes (made,
//! labelled, counted), pod deletion between phases, and single-pod probes.
//!
//! Everything goes through the bench's own HTTPS client with the admin certificate, like any
//! other client of the server; nothing reaches into the store.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::client::{self, Conn, Target};

use super::objects;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("{what}: unexpected response: {source}")]
    Decode {
        what: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Timeout(String),
}

/// Sends a request and returns the body when the status is one of `ok`.
pub async fn call(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: Bytes,
    ok: &[StatusCode],
) -> Result<Bytes, ApiError> {
    let what = format!("{method} {path}");
    let (status, resp) = conn.call(method, client::uri(path), body).await?;
    if ok.contains(&status) {
        Ok(resp)
    } else {
        Err(ApiError::Status {
            what,
            status,
            body: client::excerpt(&resp),
        })
    }
}

fn decode<T: for<'a> Deserialize<'a>>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|source| ApiError::Decode {
        what: what.to_string(),
        source,
    })
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct NameList {
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<serde::de::IgnoredAny>,
}

/// The resourceVersion of an (empty or small) list of `path`.
pub async fn list_rv(conn: &mut Conn, path: &str) -> Result<String, ApiError> {
    let body = call(conn, Method::GET, path, Bytes::new(), &[StatusCode::OK]).await?;
    let list: NameList = decode(path, &body)?;
    Ok(list.metadata.resource_version)
}

/// Deletes every pod of `ns` at once (grace period 0: the pods never ran anything, and a
/// scheduler's next phase must find the nodes empty) and waits until the list is empty.
pub async fn delete_pods(conn: &mut Conn, ns: &str, timeout: Duration) -> Result<(), ApiError> {
    let path = format!("/api/v1/namespaces/{ns}/pods");
    call(
        conn,
        Method::DELETE,
        &format!("{path}?gracePeriodSeconds=0"),
        Bytes::new(),
        &[StatusCode::OK, StatusCode::NOT_FOUND],
    )
    .await?;
    let deadline = Instant::now() + timeout;
    let probe = format!("{path}?limit=1");
    loop {
        let (status, body) = conn.get(client::uri(&probe)).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if status != StatusCode::OK {
            return Err(ApiError::Status {
                what: format!("GET {probe}"),
                status,
                body: client::excerpt(&body),
            });
        }
        let list: NameList = decode(&probe, &body)?;
        if list.items.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ApiError::Timeout(format!(
                "pods of {ns} still listed {timeout:?} after deletecollection"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Deserialize)]
struct NodeList {
    #[serde(default)]
    items: Vec<NodeItem>,
}

#[derive(Deserialize)]
struct NodeItem {
    metadata: NameOnly,
    #[serde(default)]
    status: Option<NodeStatus>,
}

#[derive(Deserialize)]
struct NodeStatus {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

/// The nodes' names (sorted) and how many of them report Ready=True.
pub async fn nodes(conn: &mut Conn) -> Result<(Vec<String>, usize), ApiError> {
    let path = "/api/v1/nodes";
    let body = call(conn, Method::GET, path, Bytes::new(), &[StatusCode::OK]).await?;
    let list: NodeList = decode(path, &body)?;
    Ok(summarize(list))
}

/// Sorted names and the Ready=True count of a node list.
fn summarize(list: NodeList) -> (Vec<String>, usize) {
    let ready = list
        .items
        .iter()
        .filter(|n| {
            n.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.kind == "Ready" && c.status == "True")
            })
        })
        .count();
    let mut names: Vec<String> = list.items.into_iter().map(|n| n.metadata.name).collect();
    names.sort();
    (names, ready)
}

/// Runs `work(conn, i)` for `0..n` on `clients` connections at once; the first error wins.
pub async fn fan_out<F, Fut>(
    target: &Target,
    clients: usize,
    n: usize,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn(Conn, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Conn, ApiError>> + Send,
{
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let conn = target.connect().await?;
        let work = work.clone();
        let step = clients.max(1);
        tasks.push(tokio::spawn(async move {
            let mut conn = conn;
            let mut i = c;
            while i < n {
                conn = work(conn, i).await?;
                i += step;
            }
            Ok::<(), ApiError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Registers node `name` the way a kubelet would: the Node, then a Ready status with
/// node-default capacity through the status subresource.
pub async fn make_node(conn: &mut Conn, name: &str, zone: &str) -> Result<(), ApiError> {
    let created = call(
        conn,
        Method::POST,
        "/api/v1/nodes",
        objects::node_json(name, zone),
        &[StatusCode::CREATED],
    )
    .await?;
    let node: serde_json::Value = decode("created node", &created)?;
    let with_status = objects::node_with_status(node, &rfc3339(SystemTime::now()));
    call(
        conn,
        Method::PUT,
        &format!("/api/v1/nodes/{name}/status"),
        Bytes::from(with_status.to_string()),
        &[StatusCode::OK],
    )
    .await?;
    Ok(())
}

/// Sets the zone label of node `name` (read, modify, replace; retried on a conflict, since the
/// node's own agent may be writing it too).
pub async fn label_zone(conn: &mut Conn, name: &str, zone: &str) -> Result<(), ApiError> {
    let path = format!("/api/v1/nodes/{name}");
    for _ in 0..10 {
        let body = call(conn, Method::GET, &path, Bytes::new(), &[StatusCode::OK]).await?;
        let mut node: serde_json::Value = decode(&path, &body)?;
        if node["metadata"]["labels"][objects::ZONE_KEY] == zone {
            return Ok(());
        }
        if !node["metadata"]["labels"].is_object() {
            node["metadata"]["labels"] = serde_json::json!({});
        }
        node["metadata"]["labels"][objects::ZONE_KEY] = zone.into();
        let (status, resp) = conn
            .call(
                Method::PUT,
                client::uri(&path),
                Bytes::from(node.to_string()),
            )
            .await?;
        match status {
            StatusCode::OK => return Ok(()),
            StatusCode::CONFLICT => continue,
            _ => {
                return Err(ApiError::Status {
                    what: format!("PUT {path}"),
                    status,
                    body: client::excerpt(&resp),
                });
            }
        }
    }
    Err(ApiError::Timeout(format!(
        "labelling {name}: ten conflicts in a row"
    )))
}

/// Creates a single pod and waits until it is bound; returns whether it was within `timeout`.
pub async fn probe_pod(
    conn: &mut Conn,
    ns: &str,
    name: &str,
    scheduler_name: Option<&str>,
    timeout: Duration,
) -> Result<bool, ApiError> {
    let mut pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]},
    });
    if let Some(s) = scheduler_name {
        pod["spec"]["schedulerName"] = s.into();
    }
    let path = format!("/api/v1/namespaces/{ns}/pods");
    call(
        conn,
        Method::POST,
        &path,
        Bytes::from(pod.to_string()),
        &[StatusCode::CREATED],
    )
    .await?;
    let one = format!("{path}/{name}");
    let deadline = Instant::now() + timeout;
    let bound = loop {
        let body = call(conn, Method::GET, &one, Bytes::new(), &[StatusCode::OK]).await?;
        let p: serde_json::Value = decode(&one, &body)?;
        if p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    call(
        conn,
        Method::DELETE,
        &format!("{one}?gracePeriodSeconds=0"),
        Bytes::new(),
        &[StatusCode::OK, StatusCode::ACCEPTED, StatusCode::NOT_FOUND],
    )
    .await?;
    Ok(bound)
}

/// A wall-clock time in RFC 3339 (UTC, whole seconds), as Kubernetes writes timestamps.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by counting whole 400-year
/// eras (146,097 days each) and then years within the era starting on 1 March, so that the
/// leap day falls at the end of the counted year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(at(4_102_444_799)), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn counts_ready_nodes_from_a_list() {
        let body = br#"{"metadata":{"resourceVersion":"9"},"items":[
            {"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},
            {"metadata":{"name":"a"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
            {"metadata":{"name":"c"}}]}"#;
        let list: NodeList = decode("t", body).expect("decodes");
        let (names, ready) = summarize(list);
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(ready, 1);
        let names: NameList = decode("t", body).expect("decodes");
        assert_eq!(names.metadata.resource_version, "9");
    }
}
