//! Shared informers: one list-and-watch per resource type for all the controllers of a term,
//! each keeping the latest version of every object and telling registered handlers what
//! changed (upstream's `SharedInformerFactory`).
//!
//! Guarantees:
//! * One watch per type, however many controllers read it: [`Informers::get`] hands out the
//!   same [`Informer`] for a type every time.
//! * Handlers see every change in order, with the previous version on updates, and a relist
//!   after a watch gap turns objects that vanished meanwhile into [`Change::Deleted`]; an
//!   object recreated under the same name (new UID) is a deletion followed by an addition.
//! * A handler registered late first receives every object already known as
//!   [`Change::Added`], atomically with respect to new changes: it misses nothing and sees
//!   nothing twice.
//! * The cache is updated *before* handlers run, so a reconcile triggered by a change always
//!   reads at least that version.
//!
//! Handlers run on the watch's task and must be quick: they enqueue keys, nothing more.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::key::Key;

/// What a type needs to be watched.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// One change, as handlers see it.
#[derive(Debug)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it is now (or was last seen, for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }

    /// The previous version, for updates.
    pub fn old(&self) -> Option<&Arc<K>> {
        match self {
            Change::Updated { old, .. } => Some(old),
            _ => None,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

struct Shared<K> {
    objects: RwLock<BTreeMap<Key, Arc<K>>>,
    /// Held while a change is applied and dispatched, and while a handler registers (see the
    /// module's guarantee on late handlers).
    handlers: Mutex<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

/// The cache and handlers of one resource type.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A handler that panicked poisons nothing we rely on: the map is always consistent.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K: Watched> Informer<K> {
    fn new() -> Informer<K> {
        Informer {
            shared: Arc::new(Shared {
                objects: RwLock::new(BTreeMap::new()),
                handlers: Mutex::new(Vec::new()),
                synced: watch::channel(false).0,
            }),
        }
    }

    /// The cached object behind `key`.
    pub fn get(&self, key: &Key) -> Option<Arc<K>> {
        read(&self.shared.objects).get(key).cloned()
    }

    /// Every cached object, ordered by namespace and name.
    pub fn list(&self) -> Vec<Arc<K>> {
        read(&self.shared.objects).values().cloned().collect()
    }

    /// The cached objects of one namespace, ordered by name.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<K>> {
        read(&self.shared.objects)
            .range(Key::new(namespace, "")..)
            .take_while(|(k, _)| k.namespace == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Every cached object for which `f` is true.
    pub fn filter(&self, mut f: impl FnMut(&K) -> bool) -> Vec<Arc<K>> {
        read(&self.shared.objects)
            .values()
            .filter(|o| f(o))
            .cloned()
            .collect()
    }

    /// Calls `f` on every change from now on, after replaying every known object as added.
    pub fn on_change(&self, f: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let mut handlers = lock(&self.shared.handlers);
        for o in self.list() {
            f(&Change::Added(o));
        }
        handlers.push(Box::new(f));
    }

    /// Whether the first list has completed.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits for the first list to complete.
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        // An error means the informer is gone; nothing will ever sync.
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn mark_synced(&self) {
        self.shared.synced.send_replace(true);
    }

    /// Stores `obj` and tells the handlers.
    fn apply(&self, obj: K) {
        let handlers = lock(&self.shared.handlers);
        let key = Key::of(&obj);
        let new = Arc::new(obj);
        let old = write(&self.shared.objects).insert(key, new.clone());
        let changes = match old {
            Some(old) if old.meta().uid != new.meta().uid => {
                vec![Change::Deleted(old), Change::Added(new)]
            }
            Some(old) => vec![Change::Updated { old, new }],
            None => vec![Change::Added(new)],
        };
        for c in &changes {
            for h in handlers.iter() {
                h(c);
            }
        }
    }

    /// Forgets the object behind `key` and tells the handlers.
    fn remove(&self, key: &Key) {
        let handlers = lock(&self.shared.handlers);
        let old = write(&self.shared.objects).remove(key);
        if let Some(old) = old {
            let c = Change::Deleted(old);
            for h in handlers.iter() {
                h(&c);
            }
        }
    }

    /// Lists and watches `api` forever (kube-runtime relists with backoff after errors).
    async fn run(self, api: Api<K>) {
        let kind = K::kind(&()).to_string();
        // Keys listed so far in the current (re)list.
        let mut relisting: Option<HashSet<Key>> = None;
        let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relisting = Some(HashSet::new()),
                Ok(Event::InitApply(obj)) => {
                    if let Some(seen) = relisting.as_mut() {
                        seen.insert(Key::of(&obj));
                    }
                    self.apply(obj);
                }
                Ok(Event::InitDone) => {
                    if let Some(seen) = relisting.take() {
                        let gone: Vec<Key> = read(&self.shared.objects)
                            .keys()
                            .filter(|k| !seen.contains(*k))
                            .cloned()
                            .collect();
                        for k in gone {
                            self.remove(&k);
                        }
                    }
                    if !self.has_synced() {
                        tracing::debug!(%kind, "informer synced");
                    }
                    self.mark_synced();
                }
                Ok(Event::Apply(obj)) => self.apply(obj),
                Ok(Event::Delete(obj)) => self.remove(&Key::of(&obj)),
                Err(e) => {
                    tracing::warn!(%kind, error = %e, "watch failed; relisting after a backoff");
                }
            }
        }
    }
}

/// The informers of one term, by type. Dropping the last clone stops every watch.
#[derive(Clone)]
pub struct Informers {
    client: Client,
    registry: Arc<Mutex<Registry>>,
}

type Waiter = Box<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

struct Registry {
    by_type: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// Watches created before [`Informers::start`].
    pending: Vec<futures::future::BoxFuture<'static, ()>>,
    /// One per informer: waits for its first list.
    synced: Vec<Waiter>,
    tasks: JoinSet<()>,
    started: bool,
}

impl Informers {
    pub fn new(client: Client) -> Informers {
        Informers {
            client,
            registry: Arc::new(Mutex::new(Registry {
                by_type: HashMap::new(),
                pending: Vec::new(),
                synced: Vec::new(),
                tasks: JoinSet::new(),
                started: false,
            })),
        }
    }

    /// The client the informers watch with (controllers write with it too).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The informer of `K` across all namespaces, created on first use. Its watch starts with
    /// [`Informers::start`] (at once, if that already happened).
    pub fn get<K: Watched>(&self) -> Informer<K> {
        let mut reg = lock(&self.registry);
        if let Some(i) = reg
            .by_type
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return i.clone();
        }
        let informer = Informer::<K>::new();
        reg.by_type
            .insert(TypeId::of::<K>(), Box::new(informer.clone()));
        let probe = informer.clone();
        reg.synced.push(Box::new(move || {
            let probe = probe.clone();
            Box::pin(async move { probe.wait_synced().await })
        }));
        let run = Box::pin(informer.clone().run(Api::all(self.client.clone())));
        if reg.started {
            reg.tasks.spawn(run);
        } else {
            reg.pending.push(run);
        }
        informer
    }

    /// Starts the watches of every informer created so far (later ones start when created).
    pub fn start(&self) {
        let mut reg = lock(&self.registry);
        reg.started = true;
        for run in std::mem::take(&mut reg.pending) {
            reg.tasks.spawn(run);
        }
    }

    /// Waits until every informer created so far has completed its first list.
    pub async fn wait_synced(&self) {
        let waits: Vec<_> = lock(&self.registry).synced.iter().map(|w| w()).collect();
        futures::future::join_all(waits).await;
    }

    /// Stops every watch.
    pub fn stop(&self) {
        let mut reg = lock(&self.registry);
        reg.pending.clear();
        reg.tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(ns: &str, name: &str, uid: &str, v: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            data: Some([("v".to_string(), v.to_string())].into()),
            ..Default::default()
        }
    }

    fn describe(c: &Change<ConfigMap>) -> String {
        let v = |o: &ConfigMap| {
            o.data
                .as_ref()
                .and_then(|d| d.get("v").cloned())
                .unwrap_or_default()
        };
        match c {
            Change::Added(o) => format!("add {} {}", Key::of(o.as_ref()), v(o)),
            Change::Updated { old, new } => {
                format!("update {} {}->{}", Key::of(new.as_ref()), v(old), v(new))
            }
            Change::Deleted(o) => format!("delete {} {}", Key::of(o.as_ref()), v(o)),
        }
    }

    fn recording(i: &Informer<ConfigMap>) -> Arc<Mutex<Vec<String>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        i.on_change(move |c| lock(&s).push(describe(c)));
        seen
    }

    #[test]
    fn changes_carry_the_old_version_and_uid_changes_are_recreations() {
        let i = Informer::<ConfigMap>::new();
        let seen = recording(&i);
        i.apply(cm("a", "x", "u1", "1"));
        i.apply(cm("a", "x", "u1", "2"));
        i.apply(cm("a", "x", "u2", "3"));
        i.remove(&Key::new("a", "x"));
        i.remove(&Key::new("a", "x"));
        assert_eq!(
            *lock(&seen),
            [
                "add a/x 1",
                "update a/x 1->2",
                "delete a/x 2",
                "add a/x 3",
                "delete a/x 3"
            ]
        );
    }

    #[test]
    fn late_handlers_get_a_replay_first() {
        let i = Informer::<ConfigMap>::new();
        i.apply(cm("b", "y", "u1", "1"));
        i.apply(cm("a", "x", "u2", "1"));
        let seen = recording(&i);
        i.apply(cm("a", "x", "u2", "2"));
        assert_eq!(*lock(&seen), ["add a/x 1", "add b/y 1", "update a/x 1->2"]);
    }

    #[test]
    fn namespace_lists_stay_inside_their_namespace() {
        let i = Informer::<ConfigMap>::new();
        for (ns, name) in [("a", "1"), ("ab", "0"), ("a", "2"), ("", "c"), ("b", "0")] {
            i.apply(cm(ns, name, &format!("{ns}{name}"), "v"));
        }
        let names = |v: Vec<Arc<ConfigMap>>| -> Vec<String> {
            v.iter().map(|o| Key::of(o.as_ref()).to_string()).collect()
        };
        assert_eq!(names(i.list_in("a")), ["a/1", "a/2"]);
        assert_eq!(names(i.list_in("")), ["c"]);
        assert_eq!(names(i.list_in("zz")), Vec::<String>::new());
        assert_eq!(i.list().len(), 5);
        assert!(i.get(&Key::new("ab", "0")).is_some());
        assert!(i.get(&Key::new("a", "0")).is_none());
    }
}
