//! LIST latency on a namespace holding many ConfigMaps, in the three shapes clients use: a full
//! list (`resourceVersion` unset: the most recent data), `resourceVersion=0` (any cached state
//! will do, what informers start with), and paging with `limit` + `continue`.
//!
//! A paged list is timed as the sum of its page round-trips; decoding each page to find the
//! `continue` token happens between pages, off the clock, so the figure is the server's and the
//! wire's, not the bench's JSON parser's. Every repetition is decoded and its item count checked.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::client::{self, Conn, Target};
use crate::procfs;
use crate::stats::Latencies;
use crate::workload::Procs;

/// Page size of the paged list.
pub const PAGE_LIMIT: usize = 500;

#[derive(Deserialize)]
struct ListPage {
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    cont: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    Full,
    ResourceVersionZero,
    Paged,
}

impl ListShape {
    pub const ALL: [ListShape; 3] = [
        ListShape::Full,
        ListShape::ResourceVersionZero,
        ListShape::Paged,
    ];

    pub fn label(self) -> String {
        match self {
            ListShape::Full => "full list (no limit)".to_string(),
            ListShape::ResourceVersionZero => "resourceVersion=0".to_string(),
            ListShape::Paged => format!("paged, limit={PAGE_LIMIT}"),
        }
    }
}

pub struct ListResult {
    pub shape: ListShape,
    /// The first (unrepeated, cold) run.
    pub first: Duration,
    /// The measured repetitions after the first.
    pub latencies: Latencies,
    /// Response bytes of one complete list (all pages).
    pub bytes: u64,
    pub pages: usize,
    /// Items of the last repetition (should equal the objects in the namespace).
    pub items: usize,
    /// Repetitions whose item count was not the expected one, or that failed.
    pub bad_runs: usize,
    pub error: Option<String>,
    pub server_cpu_per_list: Option<Duration>,
    /// CPU of the server's separate store process (etcd) per list, when it has one.
    pub store_cpu_per_list: Option<Duration>,
}

/// Percent-encodes a query value (continue tokens are base64 and may hold `+`, `/`, `=`).
pub fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one complete list returned.
struct OneList {
    elapsed: Duration,
    bytes: u64,
    pages: usize,
    items: usize,
}

async fn list_once(conn: &mut Conn, ns: &str, shape: ListShape) -> Result<OneList, String> {
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut out = OneList {
        elapsed: Duration::ZERO,
        bytes: 0,
        pages: 0,
        items: 0,
    };
    let mut cont: Option<String> = None;
    loop {
        let path = match (shape, &cont) {
            (ListShape::Full, _) => base.clone(),
            (ListShape::ResourceVersionZero, _) => format!("{base}?resourceVersion=0"),
            (ListShape::Paged, None) => format!("{base}?limit={PAGE_LIMIT}"),
            (ListShape::Paged, Some(c)) => {
                format!("{base}?limit={PAGE_LIMIT}&continue={}", query_escape(c))
            }
        };
        let t = Instant::now();
        let (status, body) = conn
            .get(client::uri(&path))
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        out.elapsed += t.elapsed();
        if status != StatusCode::OK {
            return Err(format!(
                "GET {path}: HTTP {status}: {}",
                client::excerpt(&body)
            ));
        }
        out.bytes += body.len() as u64;
        out.pages += 1;
        let page: ListPage =
            serde_json::from_slice(&body).map_err(|e| format!("GET {path}: not a list: {e}"))?;
        out.items += page.items.len();
        cont = page.metadata.cont.filter(|c| !c.is_empty());
        if shape != ListShape::Paged || cont.is_none() {
            return Ok(out);
        }
        if out.pages > 100_000 {
            return Err(format!(
                "GET {base}: paging did not end after {} pages",
                out.pages
            ));
        }
    }
}

/// Lists namespace `ns` (holding `expected` ConfigMaps) `reps` times in each shape, after one
/// first (cold) run per shape.
pub async fn run(
    target: &Target,
    ns: &str,
    expected: usize,
    reps: usize,
    procs: Procs,
) -> anyhow::Result<Vec<ListResult>> {
    let mut conn = target.connect().await?;
    let mut results = Vec::new();
    for shape in ListShape::ALL {
        let mut r = ListResult {
            shape,
            first: Duration::ZERO,
            latencies: Latencies::default(),
            bytes: 0,
            pages: 0,
            items: 0,
            bad_runs: 0,
            error: None,
            server_cpu_per_list: None,
            store_cpu_per_list: None,
        };
        match list_once(&mut conn, ns, shape).await {
            Ok(one) => r.first = one.elapsed,
            Err(e) => {
                r.error = Some(e);
                results.push(r);
                conn = target.connect().await?;
                continue;
            }
        }
        let meter = procs.server.and_then(procfs::CpuMeter::start);
        let store_meter = procs.store.and_then(procfs::CpuMeter::start);
        let mut samples = Vec::with_capacity(reps);
        for _ in 0..reps {
            match list_once(&mut conn, ns, shape).await {
                Ok(one) => {
                    if one.items != expected {
                        r.bad_runs += 1;
                    }
                    samples.push(one.elapsed);
                    (r.bytes, r.pages, r.items) = (one.bytes, one.pages, one.items);
                }
                Err(e) => {
                    r.bad_runs += 1;
                    r.error.get_or_insert(e);
                    conn = target.connect().await?;
                }
            }
        }
        if !samples.is_empty() {
            let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
            r.server_cpu_per_list = meter.and_then(|m| m.read()).map(|c| c / n);
            r.store_cpu_per_list = store_meter.and_then(|m| m.read()).map(|c| c / n);
        }
        r.latencies = Latencies::from_durations(&samples);
        results.push(r);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_continue_tokens() {
        assert_eq!(query_escape("abc-_.~09"), "abc-_.~09");
        assert_eq!(query_escape("eyJ2Ijo+/x=="), "eyJ2Ijo%2B%2Fx%3D%3D");
    }

    #[test]
    fn list_page_reads_continue_and_counts_items() {
        let page: ListPage = serde_json::from_str(
            r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"tok"},"items":[{"a":1},{"b":[2]}]}"#,
        )
        .expect("page");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.metadata.cont.as_deref(), Some("tok"));
        let last: ListPage =
            serde_json::from_str(r#"{"metadata":{"resourceVersion":"42"},"items":[]}"#)
                .expect("page");
        assert_eq!(last.metadata.cont, None);
        assert!(last.items.is_empty());
    }
}
