//! The batch controllers of the controller manager, with upstream's semantics:
//!
//! * [`job`]: runs a Job's pods to completion (completions and parallelism, NonIndexed and
//!   Indexed modes, backoff limit with exponential recreation delays, active deadline, pod
//!   failure policy, suspend), counting finished pods through the
//!   `batch.kubernetes.io/job-tracking` finalizer so no pod is counted twice or lost.
//! * [`cronjob`]: creates Jobs on a cron schedule (time zones, concurrency policy, starting
//!   deadline, history limits, suspend).
//! * [`ttl`]: deletes finished Jobs `ttlSecondsAfterFinished` after they finished.
//!
//! Every controller reads time through a [`clock::Clock`], so schedule, deadline and TTL logic
//! is tested without waiting.

pub mod clock;
pub mod cronjob;
pub mod job;
pub mod ttl;

use controller_runtime::Controller;

/// The controllers this crate provides, for the controller manager (upstream's
/// `--controllers` names).
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "job",
        start: job::start,
    },
    Controller {
        name: "cronjob",
        start: cronjob::start,
    },
    Controller {
        name: "ttl-after-finished",
        start: ttl::start,
    },
];
