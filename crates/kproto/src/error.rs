//! The one error type of this crate.
//!
//! Every variant describes a problem with the request body (never a bug the client cannot fix),
//! so the caller answers all of them with a `400 BadRequest` `Status`, as upstream does when its
//! protobuf serializer rejects a body. The messages are written to be shown to the client as is.

/// Why a protobuf request body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with the 4-byte `k8s\0` prefix every Kubernetes protobuf
    /// message carries. Upstream's wording, so clients see the familiar text.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,

    /// The `runtime.Unknown` envelope after the prefix is not valid protobuf.
    #[error("unable to decode the protobuf envelope (runtime.Unknown): {0}")]
    Envelope(#[source] prost::DecodeError),

    /// The envelope has no `typeMeta.kind`, so there is no way to know what `raw` holds.
    #[error("the protobuf envelope does not set typeMeta.kind; apiVersion and kind are required")]
    MissingKind,

    /// The envelope says its payload is compressed or otherwise encoded; Kubernetes clients
    /// never do that for request bodies and upstream has no decoder for it either.
    #[error("unsupported contentEncoding {0:?} in the protobuf envelope")]
    ContentEncoding(String),

    /// No protobuf decoder is known for this apiVersion and kind.
    #[error(
        "no kind {kind:?} is registered for version {api_version:?} in protobuf request bodies"
    )]
    UnknownKind { api_version: String, kind: String },

    /// `raw` is not a valid protobuf encoding of the kind the envelope names.
    #[error("unable to decode {api_version} {kind} from protobuf: {source}")]
    Malformed {
        api_version: String,
        kind: String,
        #[source]
        source: prost::DecodeError,
    },

    /// The protobuf was well formed but one field holds a value with no JSON form: an embedded
    /// object that is not JSON, an impossible IntOrString type, a time out of range...
    #[error("{kind}: {path}: {reason}")]
    Field {
        kind: String,
        path: String,
        reason: String,
    },
}
