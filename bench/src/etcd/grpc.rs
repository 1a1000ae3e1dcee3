//! A minimal gRPC client for etcd's KV service: unary `Put` and `Range` over one HTTP/2
//! connection (plaintext h2, as etcd serves on an `http://` client URL).
//!
//! The messages are declared by hand with prost's derive, field numbers taken from etcd's
//! `api/etcdserverpb/rpc.proto` (fields the bench does not use are left out; protobuf skips
//! unknown fields). This is the wire protocol every etcd client speaks; doing it directly keeps
//! protoc out of the build (the `etcd-client` crate compiles .proto files at build time) and
//! makes the client as lean as the one used against keelson.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, TE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpStream;

#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int64, tag = "3")]
    pub revision: i64,
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub range_end: Bytes,
    #[prost(bool, tag = "9")]
    pub count_only: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    #[prost(int64, tag = "4")]
    pub count: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("connecting to etcd at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP/2: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("etcd answered HTTP {0}")]
    Status(http::StatusCode),
    #[error("etcd answered grpc-status {code}: {message}")]
    Grpc { code: String, message: String },
    #[error("malformed gRPC response: {0}")]
    Frame(String),
    #[error("decoding the response message: {0}")]
    Decode(#[from] prost::DecodeError),
}

static GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
static TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

/// The method URIs of one etcd endpoint, built once.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub put: Uri,
    pub range: Uri,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Result<Endpoint, GrpcError> {
        let uri = |method: &str| {
            Uri::try_from(format!("http://{addr}/etcdserverpb.KV/{method}"))
                .map_err(http::Error::from)
        };
        Ok(Endpoint {
            addr,
            put: uri("Put")?,
            range: uri("Range")?,
        })
    }

    pub async fn connect(&self) -> Result<GrpcConn, GrpcError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|source| GrpcError::Connect {
                addr: self.addr,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(GrpcConn { sender })
    }
}

/// One HTTP/2 connection to etcd; the bench sends one call at a time on it.
pub struct GrpcConn {
    sender: http2::SendRequest<Full<Bytes>>,
}

/// A message in gRPC's length-prefixed framing: flag byte (0: uncompressed), u32 length, bytes.
pub fn frame<M: Message>(m: &M) -> Bytes {
    let len = m.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    // Encoding into a buffer sized by encoded_len cannot run out of room.
    let _ = m.encode(&mut buf);
    buf.freeze()
}

/// The message inside one gRPC frame.
pub fn unframe(body: &[u8]) -> Result<&[u8], GrpcError> {
    if body.len() < 5 {
        return Err(GrpcError::Frame(format!(
            "{} bytes, shorter than a frame header",
            body.len()
        )));
    }
    if body[0] != 0 {
        return Err(GrpcError::Frame(
            "compressed message (not requested)".to_string(),
        ));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    body.get(5..5 + len).ok_or_else(|| {
        GrpcError::Frame(format!(
            "frame says {len} bytes, body has {}",
            body.len() - 5
        ))
    })
}

impl GrpcConn {
    /// One unary call with a pre-framed request; returns the response message bytes.
    pub async fn unary(&mut self, uri: &Uri, framed: Bytes) -> Result<Bytes, GrpcError> {
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(CONTENT_TYPE, GRPC.clone())
            .header(TE, TRAILERS.clone())
            .body(Full::new(framed))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        if !resp.status().is_success() {
            return Err(GrpcError::Status(resp.status()));
        }
        // A failure may come as "trailers-only": grpc-status in the headers.
        let head_status = grpc_status(resp.headers());
        let collected = resp.into_body().collect().await?;
        let status = collected.trailers().and_then(grpc_status).or(head_status);
        match status {
            Some((code, _)) if code == "0" => {}
            Some((code, message)) => return Err(GrpcError::Grpc { code, message }),
            None => return Err(GrpcError::Frame("no grpc-status".to_string())),
        }
        let body = collected.to_bytes();
        let msg = unframe(&body)?;
        Ok(body.slice_ref(msg))
    }

    pub async fn put(&mut self, ep: &Endpoint, framed: Bytes) -> Result<PutResponse, GrpcError> {
        let msg = self.unary(&ep.put, framed).await?;
        Ok(PutResponse::decode(msg)?)
    }

    /// How many keys start with `prefix`.
    pub async fn count_prefix(&mut self, ep: &Endpoint, prefix: &[u8]) -> Result<i64, GrpcError> {
        let req = RangeRequest {
            key: Bytes::copy_from_slice(prefix),
            range_end: prefix_end(prefix),
            count_only: true,
        };
        let msg = self.unary(&ep.range, frame(&req)).await?;
        Ok(RangeResponse::decode(msg)?.count)
    }
}

fn grpc_status(h: &http::HeaderMap) -> Option<(String, String)> {
    let code = h.get("grpc-status")?.to_str().ok()?.to_string();
    let message = h
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

/// The range end that selects every key starting with `prefix` (etcd's "prefix + 1").
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    // All 0xff (or empty): etcd's "\0" means "to the end of the keyspace".
    Bytes::from_static(b"\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_request_encodes_as_etcd_expects() {
        let req = PutRequest {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"vv"),
        };
        // field 1 (key, length-delimited) then field 2 (value).
        assert_eq!(
            req.encode_to_vec(),
            vec![0x0a, 1, b'k', 0x12, 2, b'v', b'v']
        );
        let f = frame(&req);
        assert_eq!(&f[..5], &[0, 0, 0, 0, 7]);
        assert_eq!(unframe(&f).expect("frame"), &req.encode_to_vec()[..]);
    }

    #[test]
    fn unframe_rejects_short_and_compressed_frames() {
        assert!(unframe(&[0, 0, 0]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).is_err());
        assert_eq!(
            unframe(&[0, 0, 0, 0, 0]).expect("empty message"),
            &[] as &[u8]
        );
    }

    #[test]
    fn range_response_decodes_count() {
        // header {revision: 5}, count: 300
        let bytes = [0x0a, 0x02, 0x18, 0x05, 0x20, 0xac, 0x02];
        let r = RangeResponse::decode(&bytes[..]).expect("decode");
        assert_eq!(r.count, 300);
        assert_eq!(r.header.map(|h| h.revision), Some(5));
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/bench/"), Bytes::from_static(b"/bench0"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"\xff"), Bytes::from_static(b"\0"));
    }
}
