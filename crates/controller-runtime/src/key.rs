//! [`Key`]: how controllers name the objects they reconcile (upstream's `namespace/name` queue
//! keys). Event handlers only ever enqueue keys; a reconcile reads the object behind the key
//! from the cache, so a key outliving its object is normal (the object was deleted).

use std::fmt;

use kube::Resource;

/// `namespace/name`; `namespace` is empty for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: &str, name: &str) -> Key {
        Key {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A cluster-scoped object's key.
    pub fn cluster(name: &str) -> Key {
        Key::new("", name)
    }

    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Key {
        let m = obj.meta();
        Key::new(
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
        )
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn keys_display_like_upstream() {
        let pod = Pod {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("p".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(Key::of(&pod).to_string(), "ns/p");
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(Key::of(&node), Key::cluster("n1"));
        assert_eq!(Key::of(&node).to_string(), "n1");
    }
}
