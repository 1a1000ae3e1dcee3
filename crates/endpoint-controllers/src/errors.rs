//! How both controllers classify API errors.

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Creations in a terminating namespace are refused by design and will never succeed;
/// upstream drops the work instead of retrying.
pub fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;

    fn err(code: u16, cause: Option<&str>) -> kube::Error {
        let mut s = kube::core::Status::failure("m", "r").with_code(code);
        s.details = cause.map(|c| {
            serde_json::from_value::<StatusDetails>(serde_json::json!({
                "causes": [{"reason": c}],
            }))
            .unwrap()
        });
        kube::Error::Api(s.boxed())
    }

    #[test]
    fn classification() {
        assert!(is_not_found(&err(404, None)));
        assert!(!is_not_found(&err(409, None)));
        assert!(namespace_terminating(&err(
            403,
            Some("NamespaceTerminating")
        )));
        assert!(!namespace_terminating(&err(403, None)));
    }
}
