//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`
//! package does it: every candidate tries to write its identity into the Lease's
//! `holderIdentity`; the holder renews `renewTime` every retry period; a candidate may take the
//! Lease over only once it has watched the record stay unchanged for `leaseDurationSeconds`.
//!
//! Guarantees:
//! * Writes are compare-and-swap on `resourceVersion`, so two candidates never both believe
//!   they acquired the same version of the Lease.
//! * Expiry is judged against *this* process's monotonic clock (the time the record was last
//!   seen to change), never against the `renewTime` written by another machine, so clock skew
//!   between servers cannot make a candidate steal a live lease.
//! * A leader that cannot renew within `renew_deadline` (shorter than the lease duration) stops
//!   leading *before* any other candidate may take over: [`Leadership::is_leader`] turns false
//!   and the work that depends on it must stop.
//!
//! The API is reached through the small [`LeaseClient`] trait, so any client (keelson's own,
//! kube-rs) can drive the elector, and tests use an in-memory fake with paused time.

mod kube_leases;
pub use kube_leases::KubeLeases;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use tokio::sync::watch;
use tokio::time::Instant;

/// `HOSTNAME_RANDOM`, as upstream's `hostname_uuid`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "keelson".to_string()
    } else {
        host
    };
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// Why a Lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else wrote the Lease since we read it (HTTP 409), or it already exists.
    #[error("the lease was changed by someone else")]
    Conflict,
    /// Any other failure: transport, authorization, server errors.
    #[error("{0}")]
    Api(String),
}

/// The three calls leader election needs.
#[async_trait::async_trait]
pub trait LeaseClient: Send + Sync + 'static {
    /// The Lease, or `None` if it does not exist.
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Lease>, LeaseError>;
    /// Creates the Lease; [`LeaseError::Conflict`] if it already exists.
    async fn create(&self, lease: &Lease) -> Result<Lease, LeaseError>;
    /// Replaces the Lease, conditional on `metadata.resourceVersion`;
    /// [`LeaseError::Conflict`] if it changed.
    async fn replace(&self, lease: &Lease) -> Result<Lease, LeaseError>;
}

/// What to elect on and how fast. The defaults are kube-scheduler's and
/// kube-controller-manager's: 15 s lease, 10 s renew deadline, 2 s retry.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    /// Unique per candidate (upstream uses `hostname_uuid`).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Config {
        Config {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The last version of the Lease this candidate saw, and when it first saw it.
struct Observed {
    spec: LeaseSpec,
    lease: Lease,
    at: Instant,
}

/// One candidate. Drive it with [`LeaderElector::spawn`].
pub struct LeaderElector<C: LeaseClient> {
    config: Config,
    client: Arc<C>,
    observed: Option<Observed>,
}

/// A handle on a running election.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// Whether this candidate currently leads.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until leadership becomes `leading` (returns at once if it already is).
    pub async fn wait_for(&mut self, leading: bool) {
        // An error means the elector is gone: it will never lead again.
        if self.rx.wait_for(|l| *l == leading).await.is_err() && leading {
            std::future::pending::<()>().await;
        }
    }
}

impl<C: LeaseClient> LeaderElector<C> {
    pub fn new(config: Config, client: Arc<C>) -> Self {
        LeaderElector {
            config,
            client,
            observed: None,
        }
    }

    /// Runs the election until `shutdown` turns true; then releases the Lease if held (so a
    /// peer takes over at once instead of after the lease duration).
    pub fn spawn(
        self,
        shutdown: watch::Receiver<bool>,
    ) -> (Leadership, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(self.run(tx, shutdown));
        (Leadership { rx }, task)
    }

    async fn run(mut self, tx: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
        let stop = |s: &watch::Receiver<bool>| *s.borrow();
        'outer: loop {
            // Campaign: try every retry period (jittered, as upstream, so candidates started
            // together do not collide forever).
            loop {
                if stop(&shutdown) {
                    break 'outer;
                }
                if self.try_acquire_or_renew().await {
                    break;
                }
                let wait = jitter(self.config.retry_period);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            tracing::info!(lease = %self.lease_name(), identity = %self.config.identity, "became leader");
            let _ = tx.send(true);
            let mut last_renew = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.retry_period) => {}
                    _ = shutdown.changed() => {}
                }
                if stop(&shutdown) {
                    let _ = tx.send(false);
                    self.release().await;
                    break 'outer;
                }
                if self.try_acquire_or_renew().await {
                    last_renew = Instant::now();
                } else if last_renew.elapsed() >= self.config.renew_deadline || !self.held_by_me() {
                    break;
                }
            }
            tracing::warn!(lease = %self.lease_name(), identity = %self.config.identity, "lost leadership");
            let _ = tx.send(false);
        }
        let _ = tx.send(false);
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn held_by_me(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.spec.holder_identity.as_deref() == Some(&self.config.identity))
    }

    fn record(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let mine =
            previous.is_some_and(|p| p.holder_identity.as_deref() == Some(&self.config.identity));
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: match previous {
                Some(p) if mine => p.acquire_time.clone(),
                _ => Some(now.clone()),
            },
            renew_time: Some(now),
            lease_transitions: Some(match previous {
                Some(p) if !mine && p.holder_identity.as_deref().is_some_and(|h| !h.is_empty()) => {
                    transitions + 1
                }
                _ => transitions,
            }),
            ..Default::default()
        }
    }

    /// One attempt: create the Lease, renew it, or take it over if it expired.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let (ns, name) = (&self.config.namespace, &self.config.name);
        let current = match self.client.get(ns, name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "reading the lease failed");
                return false;
            }
        };
        let Some(current) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    namespace: Some(ns.clone()),
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: Some(self.record(None)),
            };
            return match self.client.create(&lease).await {
                Ok(created) => {
                    self.observe(created);
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "creating the lease failed");
                    false
                }
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        // Restart the expiry clock whenever the record changes.
        let changed = self.observed.as_ref().is_none_or(|o| o.spec != spec);
        if changed {
            self.observe(current.clone());
        }
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let observed_at = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
        if !holder.is_empty()
            && holder != self.config.identity
            && observed_at + duration > Instant::now()
        {
            return false;
        }
        let mut next = current;
        next.spec = Some(self.record(Some(&spec)));
        match self.client.replace(&next).await {
            Ok(updated) => {
                self.observe(updated);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "updating the lease failed");
                false
            }
        }
    }

    fn observe(&mut self, lease: Lease) {
        self.observed = Some(Observed {
            spec: lease.spec.clone().unwrap_or_default(),
            lease,
            at: Instant::now(),
        });
    }

    /// Gives the Lease up: empty holder, one-second duration (upstream's ReleaseOnCancel).
    async fn release(&mut self) {
        let Some(o) = self.observed.take() else {
            return;
        };
        if o.spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        let mut lease = o.lease;
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(Timestamp::now())),
            acquire_time: o.spec.acquire_time,
            lease_transitions: o.spec.lease_transitions,
            ..Default::default()
        });
        if let Err(e) = self.client.replace(&lease).await {
            tracing::debug!(error = %e, "releasing the lease failed");
        }
    }
}

/// Up to 20% more than `d` (client-go's JitterFactor 1.2).
fn jitter(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory Lease store with resourceVersion compare-and-swap; `down` makes every
    /// call fail (an unreachable API server).
    #[derive(Default)]
    struct Fake {
        lease: Mutex<Option<Lease>>,
        version: Mutex<u64>,
        down: Mutex<Vec<String>>,
    }

    impl Fake {
        fn holder(&self) -> Option<String> {
            self.lease
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
        }
    }

    /// Each candidate gets its own view so one can be cut off from the API server.
    struct View {
        fake: Arc<Fake>,
        who: String,
    }

    impl View {
        fn check(&self) -> Result<(), LeaseError> {
            if self.fake.down.lock().unwrap().contains(&self.who) {
                return Err(LeaseError::Api("connection refused".into()));
            }
            Ok(())
        }
        fn bump(&self, mut lease: Lease) -> Lease {
            let mut v = self.fake.version.lock().unwrap();
            *v += 1;
            lease.metadata.resource_version = Some(v.to_string());
            lease
        }
    }

    #[async_trait::async_trait]
    impl LeaseClient for View {
        async fn get(&self, _: &str, _: &str) -> Result<Option<Lease>, LeaseError> {
            self.check()?;
            Ok(self.fake.lease.lock().unwrap().clone())
        }
        async fn create(&self, lease: &Lease) -> Result<Lease, LeaseError> {
            self.check()?;
            if self.fake.lease.lock().unwrap().is_some() {
                return Err(LeaseError::Conflict);
            }
            let l = self.bump(lease.clone());
            *self.fake.lease.lock().unwrap() = Some(l.clone());
            Ok(l)
        }
        async fn replace(&self, lease: &Lease) -> Result<Lease, LeaseError> {
            self.check()?;
            let current = self.fake.lease.lock().unwrap().clone();
            if current.map(|c| c.metadata.resource_version)
                != Some(lease.metadata.resource_version.clone())
            {
                return Err(LeaseError::Conflict);
            }
            let l = self.bump(lease.clone());
            *self.fake.lease.lock().unwrap() = Some(l.clone());
            Ok(l)
        }
    }

    fn candidate(
        fake: &Arc<Fake>,
        who: &str,
    ) -> (Leadership, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let view = Arc::new(View {
            fake: fake.clone(),
            who: who.into(),
        });
        let (l, task) = LeaderElector::new(Config::new("kube-system", "kube-scheduler", who), view)
            .spawn(stop_rx);
        (l, stop_tx, task)
    }

    async fn advance(secs: u64) {
        for _ in 0..secs * 10 {
            tokio::time::advance(Duration::from_millis(100)).await;
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_leader_and_takeover_after_expiry() {
        let fake = Arc::new(Fake::default());
        let (a, _stop_a, task_a) = candidate(&fake, "a");
        advance(1).await;
        let (b, _stop_b, _task_b) = candidate(&fake, "b");
        advance(30).await;
        assert!(a.is_leader());
        assert!(!b.is_leader());
        assert_eq!(fake.holder().as_deref(), Some("a"));

        // a dies without releasing: b waits out the lease duration (15 s from the last change
        // it saw), not less.
        task_a.abort();
        advance(12).await;
        assert!(!b.is_leader(), "took over before the lease expired");
        advance(8).await;
        assert!(b.is_leader());
        let lease = fake.lease.lock().unwrap().clone().unwrap();
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(spec.lease_duration_seconds, Some(15));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_cut_off_steps_down_before_anyone_takes_over() {
        let fake = Arc::new(Fake::default());
        let (a, _stop_a, _ta) = candidate(&fake, "a");
        advance(1).await;
        let (b, _stop_b, _tb) = candidate(&fake, "b");
        advance(5).await;
        assert!(a.is_leader());
        fake.down.lock().unwrap().push("a".into());
        // a's renew deadline (10 s) passes before b may take over (15 s).
        let mut stepped_down = None;
        let mut took_over = None;
        for tenth in 0..300 {
            advance_tenth().await;
            if stepped_down.is_none() && !a.is_leader() {
                stepped_down = Some(tenth);
            }
            if took_over.is_none() && b.is_leader() {
                took_over = Some(tenth);
            }
        }
        let (down, over) = (stepped_down.unwrap(), took_over.unwrap());
        assert!(down < over, "a stepped down at {down}, b led at {over}");
        assert!(!a.is_leader());
    }

    /// A lease left by a holder that is gone, whose `renewTime` is long past: a newcomer still
    /// waits a full lease duration from when *it* first saw the record, as its own clock says
    /// (another server's timestamps are never trusted).
    #[tokio::test(start_paused = true)]
    async fn a_stale_lease_is_taken_only_after_watching_it_for_the_lease_duration() {
        let fake = Arc::new(Fake::default());
        *fake.lease.lock().unwrap() = Some(Lease {
            metadata: ObjectMeta {
                namespace: Some("kube-system".into()),
                name: Some("kube-scheduler".into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("ghost".into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime("2001-01-01T00:00:00Z".parse().unwrap())),
                lease_transitions: Some(4),
                ..Default::default()
            }),
        });
        *fake.version.lock().unwrap() = 1;
        let (a, _stop, _t) = candidate(&fake, "a");
        advance(14).await;
        assert!(
            !a.is_leader(),
            "took a lease it had watched for less than 15 s"
        );
        advance(4).await;
        assert!(a.is_leader());
        let spec = fake.lease.lock().unwrap().clone().unwrap().spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(5));
    }

    /// Renewing keeps `acquireTime` and the transition count and moves `renewTime`.
    #[tokio::test(start_paused = true)]
    async fn renewals_keep_the_acquire_time() {
        let fake = Arc::new(Fake::default());
        let (a, _stop, _t) = candidate(&fake, "a");
        advance(1).await;
        assert!(a.is_leader());
        let first = fake.lease.lock().unwrap().clone().unwrap();
        let first_spec = first.spec.clone().unwrap();
        assert_eq!(first_spec.lease_transitions, Some(0));
        // Wall-clock timestamps come from the real clock; wait for it to move a little.
        std::thread::sleep(Duration::from_millis(5));
        advance(5).await;
        let later = fake.lease.lock().unwrap().clone().unwrap();
        let later_spec = later.spec.clone().unwrap();
        assert_ne!(
            first.metadata.resource_version, later.metadata.resource_version,
            "renewed"
        );
        assert_eq!(later_spec.acquire_time, first_spec.acquire_time);
        assert_eq!(later_spec.lease_transitions, Some(0));
        assert!(later_spec.renew_time.unwrap().0 > first_spec.renew_time.unwrap().0);
    }

    /// Two candidates racing to create the Lease: exactly one wins, the other sees the
    /// conflict and follows.
    #[tokio::test(start_paused = true)]
    async fn racing_creators_elect_exactly_one() {
        let fake = Arc::new(Fake::default());
        let (a, _sa, _ta) = candidate(&fake, "a");
        let (b, _sb, _tb) = candidate(&fake, "b");
        for _ in 0..100 {
            advance_tenth().await;
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
        }
        assert!(a.is_leader() ^ b.is_leader());
        let holder = fake.holder().unwrap();
        assert_eq!(holder == "a", a.is_leader());
    }

    /// A follower that shuts down leaves the Lease alone.
    #[tokio::test(start_paused = true)]
    async fn a_follower_shutting_down_does_not_touch_the_lease() {
        let fake = Arc::new(Fake::default());
        let (a, _sa, _ta) = candidate(&fake, "a");
        advance(1).await;
        let (_b, stop_b, task_b) = candidate(&fake, "b");
        advance(3).await;
        let before = fake.lease.lock().unwrap().clone().unwrap();
        fake.down.lock().unwrap().push("a".into());
        stop_b.send(true).unwrap();
        advance_tenth().await;
        advance_tenth().await;
        assert!(task_b.is_finished());
        let after = fake.lease.lock().unwrap().clone().unwrap();
        assert_eq!(
            before.metadata.resource_version,
            after.metadata.resource_version
        );
        assert!(a.is_leader());
    }

    async fn advance_tenth() {
        tokio::time::advance(Duration::from_millis(100)).await;
        tokio::task::yield_now().await;
    }

    #[tokio::test(start_paused = true)]
    async fn release_on_shutdown_hands_over_quickly() {
        let fake = Arc::new(Fake::default());
        let (a, stop_a, task_a) = candidate(&fake, "a");
        advance(1).await;
        let (mut b, _stop_b, _tb) = candidate(&fake, "b");
        advance(3).await;
        assert!(a.is_leader());
        stop_a.send(true).unwrap();
        advance(1).await;
        assert!(task_a.is_finished());
        assert_eq!(fake.holder(), None);
        // b sees an empty holder and takes the lease at its next try, well before 15 s.
        advance(4).await;
        assert!(b.is_leader());
        b.wait_for(true).await;
    }
}
