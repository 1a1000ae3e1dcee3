//! Template hashes (upstream's `ComputeHash`): the `pod-template-hash` of a Deployment's
//! ReplicaSets and the `controller-revision-hash` of ControllerRevisions. A 32-bit FNV-1a of
//! the template's canonical JSON (and the owner's `collisionCount`, when set), written with
//! upstream's "safe" alphabet (no vowels, no look-alike characters) so it can never spell a
//! word and is a valid label value and name suffix.

use serde_json::Value;

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The hash of `data` (a template as JSON) with the owner's `collision_count`.
pub fn template_hash(data: &Value, collision_count: i32) -> String {
    // `Value`'s Display is compact and, with serde_json's sorted maps, canonical.
    let mut h = fnv1a(data.to_string().as_bytes(), 0x811c_9dc5);
    if collision_count != 0 {
        h = fnv1a(collision_count.to_string().as_bytes(), h);
    }
    h.to_string()
        .bytes()
        .map(|b| char::from(SAFE[usize::from(b) % SAFE.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hashes_are_stable_safe_and_change_with_collisions() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let h = template_hash(&t, 0);
        assert_eq!(h, template_hash(&t.clone(), 0));
        assert!(h.bytes().all(|b| SAFE.contains(&b)), "{h}");
        assert!((1..=10).contains(&h.len()), "{h}");
        assert_ne!(h, template_hash(&t, 1));
        let other = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        assert_ne!(h, template_hash(&other, 0));
        // FNV-1a's published test vector: "a" → 0xe40c292c.
        assert_eq!(fnv1a(b"a", 0x811c_9dc5), 0xe40c_292c);
    }
}
