//! HTTP semantics of `/openapi/v2` and `/openapi/v3…`, matching kube-openapi's handlers:
//!
//! * content negotiation on `Accept` (v2: JSON or gnostic protobuf, under both spellings of
//!   its media type; v3: JSON — no 1.33 client asks for v3 protobuf), `406` when nothing fits;
//! * `ETag` (quoted hash) and `Vary: Accept` on every document, `304` on a matching
//!   `If-None-Match`;
//! * v3 group-version documents: a `?hash=` that is not the current one is answered with a
//!   `301` to the current URL; the current one makes the response cacheable for a year
//!   (`Cache-Control: public, immutable`), which is what lets kubectl's HTTP cache skip the
//!   download on later runs.
//!
//! Errors are returned as [`ServeError`]; it converts into [`api::ApiError`] for the server to
//! render as a `Status`.

use api::ApiError;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, HeaderMap, HeaderValue, IF_NONE_MATCH, LOCATION,
    VARY,
};
use http::{Response, StatusCode, Uri};

use crate::Document;

/// The media type answered for v2 protobuf, whichever spelling was asked for.
pub const CONTENT_TYPE_V2_PROTOBUF: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const V2_PROTOBUF_SUBTYPES: &[&str] = &[
    // client-go asks for this spelling ...
    "com.github.proto-openapi.spec.v2@v1.0+protobuf",
    // ... kube-openapi also accepts this one and answers with it.
    "com.github.proto-openapi.spec.v2.v1.0+protobuf",
];

/// Why an OpenAPI request gets no document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    /// No document at this path (an unknown group version, say).
    #[error("the server could not find the requested resource")]
    NotFound,
    /// The `Accept` header admits none of the document's encodings.
    #[error("the server was unable to respond with a content type that the client supports")]
    NotAcceptable,
}

impl From<ServeError> for ApiError {
    fn from(e: ServeError) -> ApiError {
        match e {
            ServeError::NotFound => ApiError::no_route(),
            ServeError::NotAcceptable => ApiError::not_acceptable(e.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Protobuf,
}

/// Answers a GET for an OpenAPI path; `None` when `uri` is not one (the router goes on).
pub fn respond(uri: &Uri, headers: &HeaderMap) -> Option<Result<Response<Bytes>, ServeError>> {
    let path = uri.path();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let accept = header(http::header::ACCEPT).unwrap_or("*/*");
    let if_none_match = header(IF_NONE_MATCH);
    if path == "/openapi/v2" {
        return Some(v2(accept, if_none_match));
    }
    if path == "/openapi/v3" || path == "/openapi/v3/" {
        let doc = crate::v3_index();
        return Some(Ok(document(doc, "application/json", if_none_match, None)));
    }
    let key = path.strip_prefix("/openapi/v3/")?;
    Some(v3(key, uri.query(), accept, if_none_match))
}

fn v2(accept: &str, if_none_match: Option<&str>) -> Result<Response<Bytes>, ServeError> {
    match negotiate(accept, &[Format::Json, Format::Protobuf]) {
        Some(Format::Json) => Ok(document(
            crate::v2_json(),
            "application/json",
            if_none_match,
            None,
        )),
        Some(Format::Protobuf) => Ok(document(
            crate::v2_protobuf(),
            CONTENT_TYPE_V2_PROTOBUF,
            if_none_match,
            None,
        )),
        None => Err(ServeError::NotAcceptable),
    }
}

fn v3(
    key: &str,
    query: Option<&str>,
    accept: &str,
    if_none_match: Option<&str>,
) -> Result<Response<Bytes>, ServeError> {
    let doc = crate::v3_document(key).ok_or(ServeError::NotFound)?;
    if negotiate(accept, &[Format::Json]).is_none() {
        return Err(ServeError::NotAcceptable);
    }
    let hash = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "hash")
            .map(|(_, v)| v)
    });
    match hash {
        Some(hash) if !hash.is_empty() && hash != doc.etag() => {
            let location = format!("/openapi/v3/{key}?hash={}", doc.etag());
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            insert(response.headers_mut(), LOCATION, &location);
            insert(response.headers_mut(), VARY, "Accept");
            Ok(response)
        }
        Some(hash) if !hash.is_empty() => Ok(document(
            doc,
            "application/json",
            if_none_match,
            Some(CacheFor::Year),
        )),
        _ => Ok(document(doc, "application/json", if_none_match, None)),
    }
}

enum CacheFor {
    Year,
}

fn insert(headers: &mut HeaderMap, name: http::header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn document(
    doc: &Document,
    content_type: &str,
    if_none_match: Option<&str>,
    cache: Option<CacheFor>,
) -> Response<Bytes> {
    let etag = format!("\"{}\"", doc.etag());
    let not_modified = if_none_match.is_some_and(|inm| {
        inm.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str()))
    });
    let mut response = if not_modified {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(doc.body());
        insert(r.headers_mut(), CONTENT_TYPE, content_type);
        r
    };
    let headers = response.headers_mut();
    insert(headers, ETAG, &etag);
    insert(headers, VARY, "Accept");
    match cache {
        Some(CacheFor::Year) => {
            insert(headers, CACHE_CONTROL, "public, immutable");
            let expires = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(24 * 365))
                .ok()
                .and_then(|t| {
                    jiff::fmt::rfc2822::DateTimePrinter::new()
                        .timestamp_to_rfc9110_string(&t)
                        .ok()
                });
            if let Some(expires) = expires {
                insert(headers, EXPIRES, &expires);
            }
        }
        None => insert(headers, CACHE_CONTROL, "no-cache, private"),
    }
    response
}

/// The first of `offers` the `Accept` header admits, best quality first (ties: header order).
fn negotiate(accept: &str, offers: &[Format]) -> Option<Format> {
    let mut clauses: Vec<(f32, &str, &str)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let (ty, sub) = media.split_once('/').unwrap_or((media, "*"));
        if q > 0.0 && !ty.is_empty() {
            clauses.push((q, ty, sub));
        }
    }
    // A stable sort keeps the header's order among equal qualities.
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0));
    clauses.into_iter().find_map(|(_, ty, sub)| {
        offers.iter().copied().find(|offer| {
            let type_ok = ty == "*" || ty == "application";
            let sub_ok = sub == "*"
                || match offer {
                    Format::Json => sub == "json",
                    Format::Protobuf => V2_PROTOBUF_SUBTYPES.contains(&sub),
                };
            type_ok && sub_ok
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_accept() {
        let both = [Format::Json, Format::Protobuf];
        assert_eq!(
            negotiate(
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                &both
            ),
            Some(Format::Protobuf)
        );
        assert_eq!(
            negotiate(
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                &both
            ),
            Some(Format::Protobuf)
        );
        assert_eq!(
            negotiate("application/json, */*", &both),
            Some(Format::Json)
        );
        assert_eq!(negotiate("*/*", &both), Some(Format::Json));
        assert_eq!(
            negotiate(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                &both
            ),
            Some(Format::Protobuf)
        );
        assert_eq!(negotiate("text/html", &both), None);
        assert_eq!(
            negotiate(
                "application/com.github.proto-openapi.spec.v3@v1.0+protobuf",
                &[Format::Json]
            ),
            None
        );
        assert_eq!(negotiate("application/json;q=0", &both), None);
    }
}
