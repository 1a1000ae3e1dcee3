//! Renders values the way upstream's `field.Error` prints them (Go's `%q` for strings, `%#v`
//! for slices and structs), so `Invalid value: []string{"10.0.0.1"}` reads as upstream's.

/// Go's `%q` of a string.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// A `*string` field: `null` when unset, else quoted.
pub fn opt_str(s: Option<&str>) -> String {
    match s {
        Some(s) => quote(s),
        None => "null".to_string(),
    }
}

/// Go's `%#v` of a slice of a string type: `[]string{"a", "b"}`, `[]string(nil)` when unset.
/// `ty` is the element type as Go names it (`string`, `core.IPFamily`).
pub fn str_slice(ty: &str, items: Option<&[String]>) -> String {
    match items {
        None => format!("[]{ty}(nil)"),
        Some(items) => format!(
            "[]{ty}{{{}}}",
            items
                .iter()
                .map(|s| quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// [`str_slice`] of `[]string`.
pub fn strings(items: Option<&[String]>) -> String {
    str_slice("string", items)
}

/// Go's `%#v` of a `*T` field that is a struct: `(*T)(nil)` when unset.
pub fn nil_ptr(ty: &str) -> String {
    format!("(*{ty})(nil)")
}

/// Go's `%#v` of a `map[string]string`.
pub fn string_map(ty: &str, m: Option<&std::collections::BTreeMap<String, String>>) -> String {
    match m {
        None => format!("{ty}(nil)"),
        Some(m) => format!(
            "{ty}{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Go's `%#v` of an `intstr.IntOrString`.
pub fn int_or_string(v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(n) => format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}"),
        IntOrString::String(s) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                quote(s)
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed assertion
mod tests {
    use super::*;

    #[test]
    fn renders_like_go() {
        assert_eq!(
            strings(Some(&["10.0.0.1".to_string(), "None".to_string()])),
            r#"[]string{"10.0.0.1", "None"}"#
        );
        assert_eq!(strings(None), "[]string(nil)");
        assert_eq!(str_slice("core.IPFamily", Some(&[])), "[]core.IPFamily{}");
        assert_eq!(opt_str(None), "null");
        assert_eq!(nil_ptr("string"), "(*string)(nil)");
        let mut m = std::collections::BTreeMap::new();
        m.insert("a".to_string(), "b".to_string());
        assert_eq!(
            string_map("map[string]string", Some(&m)),
            r#"map[string]string{"a":"b"}"#
        );
    }
}
