//! ImageLocality: prefers nodes that already have the pod's container images, weighted by
//! image size and damped for images on many nodes (so pods do not all pile onto the few nodes
//! that pulled an image first), as upstream's `pkg/scheduler/framework/plugins/imagelocality`.
//!
//! For each container and init container whose image (with `:latest` added when the name has
//! no tag) the node lists, the node earns `size × nodes-with-image / all-nodes`. The sum is
//! clamped to `[23 MiB, 1000 MiB × containers]` and mapped linearly onto `0..=100`.
//!
//! Score only sees one node, so PreScore records what needs the whole snapshot: the number of
//! nodes and, per wanted image, how many nodes have it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PreScorePlugin, ScorePlugin, Snapshot, Status,
};
use crate::plugins::node_name::expect_no_args;

pub const NAME: &str = "ImageLocality";

const PRE_SCORE_KEY: &str = "PreScoreImageLocality";

const MB: i64 = 1024 * 1024;
/// Below this sum a node scores 0: small images are cheap to pull anyway.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, above this sum a node scores 100.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The plugin; it has no args.
pub struct ImageLocality;

pub fn new(args: Option<&serde_json::Value>) -> Result<Arc<dyn Plugin>, String> {
    expect_no_args(NAME, args)?;
    Ok(Arc::new(ImageLocality))
}

/// What PreScore records from the snapshot.
#[derive(Clone, Debug)]
struct PreScoreState {
    total_nodes: usize,
    /// One entry per container and init container: the normalized image name and on how
    /// many nodes it is.
    images: Vec<(String, usize)>,
}

/// Adds `:latest` to an image reference without a tag (a `:` after the last `/`), as
/// upstream's `normalizedImageName`; digests (`@sha256:...`) count as tagged.
pub fn normalized_image_name(name: &str) -> String {
    // Compared as upstream does, with "absent" ordering before every position.
    let tagged = name.rfind(':') > name.rfind('/');
    if tagged {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn container_images(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| normalized_image_name(c.image.as_deref().unwrap_or_default()))
        .collect()
}

/// An image's size scaled by the fraction of nodes that have it.
fn scaled_image_score(size: i64, nodes_with_image: usize, total_nodes: usize) -> i64 {
    if total_nodes == 0 {
        return 0;
    }
    let spread = nodes_with_image as f64 / total_nodes as f64;
    // `as` saturates on overflow, which is what a score wants.
    (size as f64 * spread) as i64
}

/// Maps a node's summed image score onto `0..=MAX_NODE_SCORE` (upstream's
/// `calculatePriority`).
fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let containers = i64::try_from(containers).unwrap_or(i64::MAX);
    let max_threshold = MAX_CONTAINER_THRESHOLD.saturating_mul(containers);
    if max_threshold <= MIN_THRESHOLD {
        // No containers: nothing to be local about.
        return 0;
    }
    let clamped = sum.clamp(MIN_THRESHOLD, max_threshold);
    // i128: `MAX_NODE_SCORE * (clamped - MIN_THRESHOLD)` can exceed i64 for huge pods.
    let score = i128::from(MAX_NODE_SCORE) * i128::from(clamped - MIN_THRESHOLD)
        / i128::from(max_threshold - MIN_THRESHOLD);
    i64::try_from(score).unwrap_or(MAX_NODE_SCORE)
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &Pod,
        _nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let images = container_images(pod)
            .into_iter()
            .map(|name| {
                let n = snapshot.image_nodes.get(&name).copied().unwrap_or(0);
                (name, n)
            })
            .collect();
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                total_nodes: snapshot.len(),
                images,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _pod: &Pod, node: &NodeInfo) -> (i64, Status) {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return (
                0,
                Status::error(format!(
                    "reading {PRE_SCORE_KEY:?} from the cycle state: ImageLocality's PreScore did not run"
                )),
            );
        };
        // A pod names an image or two: scanning the node's list for each beats building an
        // index of the node's images for every node of every cycle.
        let sum = s
            .images
            .iter()
            .filter_map(|(name, spread)| {
                let (_, size) = node.images().find(|(n, _)| *n == name.as_str())?;
                Some(scaled_image_score(size, *spread, s.total_nodes))
            })
            .fold(0i64, i64::saturating_add);
        (calculate_priority(sum, s.images.len()), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    fn node(name: &str, images: Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"images": images}
        }))
        .unwrap()
    }

    fn pod(images: &[&str], init: &[&str]) -> Pod {
        let c = |i: &&str| json!({"name": "c", "image": i});
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {
                "containers": images.iter().map(c).collect::<Vec<_>>(),
                "initContainers": init.iter().map(c).collect::<Vec<_>>(),
            }
        }))
        .unwrap()
    }

    #[test]
    fn normalizes_image_names() {
        let cases = [
            ("nginx", "nginx:latest"),
            ("nginx:1.2", "nginx:1.2"),
            ("registry:5000/nginx", "registry:5000/nginx:latest"),
            ("registry:5000/nginx:1", "registry:5000/nginx:1"),
            ("gcr.io/a/b@sha256:abc", "gcr.io/a/b@sha256:abc"),
            ("", ":latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalized_image_name(input), want, "{input}");
        }
    }

    #[test]
    fn scores() {
        // Upstream's own table: node1 has 40/300 MB images, node2 250 MB and 10 MB ones.
        let images1 = json!([
            {"names": ["gcr.io/40:latest", "gcr.io/40:v1"], "sizeBytes": 40 * MB},
            {"names": ["gcr.io/300:latest", "gcr.io/300:v1"], "sizeBytes": 300 * MB},
            {"names": ["gcr.io/2000:latest"], "sizeBytes": 2000 * MB},
        ]);
        let images2 = json!([
            {"names": ["gcr.io/250:latest"], "sizeBytes": 250 * MB},
            {"names": ["gcr.io/10:latest", "gcr.io/10:v1"], "sizeBytes": 10 * MB},
        ]);
        let cases: [(&str, Pod, [i64; 3]); 6] = [
            ("no images anywhere", pod(&["gcr.io/none"], &[]), [0, 0, 0]),
            (
                // 40 MB × 1/3 on node1 is under the minimum threshold; node2's 250 MB × 1/3.
                "two images, one container each",
                pod(&["gcr.io/40", "gcr.io/250"], &[]),
                [0, 3, 0],
            ),
            (
                // node1: (40 + 300) × 1/3 MB; node2: 250 × 1/3 MB.
                "three containers",
                pod(&["gcr.io/40", "gcr.io/300", "gcr.io/250"], &[]),
                [3, 2, 0],
            ),
            (
                // 2000 MB × 1/3 = 666 MB: 100 × (666 − 23) / (1000 − 23).
                "one big image",
                pod(&["gcr.io/2000"], &[]),
                [65, 0, 0],
            ),
            (
                "init containers count",
                pod(&["gcr.io/none"], &["gcr.io/2000"]),
                [32, 0, 0],
            ),
            ("tag given", pod(&["gcr.io/10:v1"], &[]), [0, 0, 0]),
        ];
        let snapshot = Snapshot::from_objects(
            vec![
                node("node1", images1),
                node("node2", images2),
                node("node3", json!([])),
            ],
            vec![],
        );
        for (name, p, want) in cases {
            let mut state = CycleState::new();
            assert!(
                PreScorePlugin::pre_score(
                    &ImageLocality,
                    &mut state,
                    &p,
                    &snapshot.nodes,
                    &snapshot
                )
                .is_success()
            );
            let got: Vec<i64> = snapshot
                .nodes
                .iter()
                .map(|n| {
                    let (score, status) = ScorePlugin::score(&ImageLocality, &state, &p, n);
                    assert!(status.is_success(), "{name}: {status}");
                    score
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn spread_counts_nodes_with_the_image() {
        let img = || json!([{"names": ["big:latest"], "sizeBytes": 1000 * MB}]);
        let snapshot = Snapshot::from_objects(
            vec![node("a", img()), node("b", img()), node("c", json!([]))],
            vec![],
        );
        let p = pod(&["big"], &[]);
        let mut state = CycleState::new();
        PreScorePlugin::pre_score(&ImageLocality, &mut state, &p, &snapshot.nodes, &snapshot);
        // 1000 MB × 2/3 = 666 MB: 100 × (666 − 23) / (1000 − 23) = 65.
        assert_eq!(
            ScorePlugin::score(&ImageLocality, &state, &p, &snapshot.nodes[0]).0,
            65
        );
        assert_eq!(
            ScorePlugin::score(&ImageLocality, &state, &p, &snapshot.nodes[2]).0,
            0
        );
        // Without PreScore the plugin reports an error instead of guessing.
        let (_, s) = ScorePlugin::score(&ImageLocality, &CycleState::new(), &p, &snapshot.nodes[0]);
        assert_eq!(s.code, crate::framework::Code::Error);
    }

    #[test]
    fn priority_bounds() {
        let cases = [
            (0, 1, 0),
            (MIN_THRESHOLD, 1, 0),
            (MAX_CONTAINER_THRESHOLD, 1, 100),
            (i64::MAX, 1, 100),
            (i64::MAX, usize::MAX, 100),
            (500 * MB, 0, 0),
        ];
        for (sum, containers, want) in cases {
            assert_eq!(
                calculate_priority(sum, containers),
                want,
                "{sum} {containers}"
            );
        }
    }
}
