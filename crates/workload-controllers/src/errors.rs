//! How the controllers read API errors (shared so both classify them the same way).

/// The server's message, for Events and logs.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A create that found the name taken.
pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Creations into a terminating namespace fail by design; upstream does not count them as
/// failures.
pub fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "x")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn classification() {
        assert!(is_not_found(&err(404, "gone")));
        assert!(!is_not_found(&err(409, "taken")));
        assert!(is_already_exists(&err(409, "taken")));
        assert_eq!(api_message(&err(403, "quota")), "quota");
        assert!(!namespace_terminating(&err(403, "quota")));
    }
}
