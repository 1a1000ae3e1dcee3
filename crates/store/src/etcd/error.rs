//! How failures talking to etcd become [`StoreError`]s.
//!
//! The API server tells a transient failure (retry later: `Unavailable`, `Timeout`) from a
//! broken request (`Internal`), so the mapping is deliberate: anything that says "the cluster
//! cannot answer right now" — no connection, a member going away, no leader, a full request
//! queue — is `Unavailable`; a deadline is `Timeout`; the rest is `Internal`. Every message
//! names the endpoints and the cause, because "storage unavailable" alone sends an operator
//! nowhere. etcd's two MVCC errors (compacted, future revision) are recognised separately: the
//! caller turns them into `Compacted`/`FutureRevision` with the right revisions.

use std::error::Error as StdError;

use etcd_client::Error as ClientError;
use tonic::Code;

use crate::StoreError;

/// etcd's text for a read or watch below the compacted revision (`mvcc.ErrCompacted`).
const COMPACTED: &str = "required revision has been compacted";
/// etcd's text for a read above the current revision (`mvcc.ErrFutureRev`).
const FUTURE: &str = "required revision is a future revision";

/// What an etcd error means for the caller.
#[derive(Debug)]
pub(super) enum Failure {
    /// The revision asked for has been compacted away.
    Compacted,
    /// The revision asked for is newer than the store's.
    FutureRevision,
    /// Anything else, already mapped.
    Other(StoreError),
}

/// Classifies `e`, raised while doing `what` against the etcd at `endpoints`.
pub(super) fn classify(e: ClientError, endpoints: &str, what: &str) -> Failure {
    if let ClientError::GRpcStatus(status) = &e
        && status.code() == Code::OutOfRange
    {
        if status.message().contains(COMPACTED) {
            return Failure::Compacted;
        }
        if status.message().contains(FUTURE) {
            return Failure::FutureRevision;
        }
    }
    Failure::Other(map(e, endpoints, what))
}

/// Maps `e` to a [`StoreError`] for a caller that has no special case.
pub(super) fn map(e: ClientError, endpoints: &str, what: &str) -> StoreError {
    let context = |cause: String| format!("{what} on etcd at {endpoints}: {cause}");
    match e {
        ClientError::GRpcStatus(status) => {
            let cause = describe_status(&status);
            match status.code() {
                Code::DeadlineExceeded => StoreError::Timeout(context(cause)),
                // etcd answers a proposal that did not commit in time with Unavailable and
                // "etcdserver: request timed out"; that is a deadline, not an outage.
                Code::Unavailable if status.message().contains("timed out") => {
                    StoreError::Timeout(context(cause))
                }
                // `Cancelled` is what tonic reports when a connection dies under a request.
                Code::Unavailable | Code::Cancelled | Code::Aborted | Code::ResourceExhausted => {
                    StoreError::Unavailable(context(cause))
                }
                // A transport failure surfaces as Unknown with the I/O error as its source.
                Code::Unknown if status.source().is_some() => {
                    StoreError::Unavailable(context(cause))
                }
                _ => StoreError::Internal(context(cause)),
            }
        }
        ClientError::TransportError(t) => StoreError::Unavailable(context(chain(&t))),
        ClientError::IoError(io) => StoreError::Unavailable(context(chain(&io))),
        // The request half of a watch stream is gone: the stream itself has failed.
        ClientError::WatchError(why) => StoreError::Unavailable(context(why)),
        other => StoreError::Internal(context(chain(&other))),
    }
}

/// Whether `e` says the request never left this process: no connection to any member could
/// be made. Such a failure is safe to retry even for a write.
pub(super) fn never_sent(e: &ClientError) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = match e {
        ClientError::GRpcStatus(status) => status.source(),
        ClientError::TransportError(t) => t.source(),
        _ => None,
    };
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// A gRPC status as a sentence: its message, then whatever caused it.
fn describe_status(status: &tonic::Status) -> String {
    let mut text = if status.message().is_empty() {
        format!("gRPC status {:?}", status.code())
    } else {
        status.message().to_owned()
    };
    if let Some(source) = status.source() {
        append_chain(&mut text, source);
    }
    text
}

/// `e` and its sources, joined with ": ", skipping a source that repeats what is already said
/// (hyper and tonic often wrap an error in one whose text includes it).
pub(super) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    if let Some(source) = e.source() {
        append_chain(&mut text, source);
    }
    text
}

fn append_chain(text: &mut String, mut e: &(dyn StdError + 'static)) {
    loop {
        let part = e.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        match e.source() {
            Some(next) => e = next,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> ClientError {
        ClientError::GRpcStatus(tonic::Status::new(code, message))
    }

    #[test]
    fn mvcc_errors_are_recognised() {
        let compacted = status(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        );
        assert!(matches!(
            classify(compacted, "e", "range"),
            Failure::Compacted
        ));
        let future = status(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision",
        );
        assert!(matches!(
            classify(future, "e", "range"),
            Failure::FutureRevision
        ));
    }

    #[test]
    fn transient_failures_are_unavailable_or_timeout_and_name_the_endpoint() {
        let e = map(
            status(Code::Unavailable, "etcdserver: no leader"),
            "http://10.0.0.1:2379",
            "get /a",
        );
        assert_eq!(
            e,
            StoreError::Unavailable(
                "get /a on etcd at http://10.0.0.1:2379: etcdserver: no leader".into()
            )
        );
        let e = map(
            status(Code::Unavailable, "etcdserver: request timed out"),
            "h:1",
            "create /a",
        );
        assert!(matches!(e, StoreError::Timeout(m) if m.contains("request timed out")));
        let e = map(status(Code::DeadlineExceeded, ""), "h:1", "range /a");
        assert_eq!(
            e,
            StoreError::Timeout("range /a on etcd at h:1: gRPC status DeadlineExceeded".into())
        );
        let e = map(
            ClientError::WatchError("channel closed".into()),
            "h:1",
            "watch /a",
        );
        assert!(matches!(e, StoreError::Unavailable(_)));
    }

    #[test]
    fn request_errors_are_internal() {
        let e = map(
            status(Code::InvalidArgument, "etcdserver: request is too large"),
            "h:1",
            "create /a",
        );
        assert_eq!(
            e,
            StoreError::Internal(
                "create /a on etcd at h:1: etcdserver: request is too large".into()
            )
        );
    }

    #[test]
    fn chains_skip_repeated_text() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(Box::new(io));
        // The outer error's text already is the inner one's; it is said once.
        assert_eq!(chain(&outer), "connection refused");
    }
}
