//! Group commit of plain creates on PostgreSQL: the creates waiting at one moment
//! are written together, in one statement of fixed text (`group_create_sql`), so
//! that PostgreSQL's cost per statement and per commit (executor start, snapshot,
//! WAL record, round trip, wake-ups) is shared between them. A create that finds
//! no other waiting goes alone, in the one statement `bench/pgbench-create.sql`
//! replays. A few groups run at once (`LANES`), each on its own connection: while
//! they are in flight, the next creates queue up and form the next group. No lock
//! is held across groups; each group is one atomic statement.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use sqlx::Row;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::create::NewResource;
use super::{into_arguments, Dialect, Store, Stored};
use crate::{Error, Result};

/// Groups in flight at once (each holds one connection of the pool).
const LANES: usize = 2;
/// Creates per group at most.
const MAX_GROUP: usize = 64;

struct Job {
    new: NewResource,
    reply: oneshot::Sender<Result<Stored>>,
}

/// The store's group writer, started with the first create that uses it.
#[derive(Clone, Default)]
pub(super) struct Group(Writer<Job>);

impl Group {
    pub(super) async fn create(&self, store: &Store, new: NewResource) -> Result<Stored> {
        if store.dialect != Dialect::Postgres {
            return store.create_alone(new).await;
        }
        let (reply, answer) = oneshot::channel();
        let start = |rx| {
            // The writer's copy of the store has a group of its own, never started (it
            // writes with `create_alone` and `together`), so that it holds no sender of
            // this queue (nor of the shared transactions') and stops when the last
            // store handle is dropped.
            let writer = Store { group: Group::default(), shared: Default::default(), ..store.clone() };
            tokio::spawn(run(writer, rx));
        };
        if let Err(job) = self.0.send(Job { new, reply }, start).await {
            return store.create_alone(job.new).await;
        }
        answer.await.map_err(|_| Error::Busy("the store's writer stopped while creating; retry".into()))?
    }
}

/// The queue to a batching writer task that starts with the first job sent to it
/// (group creates, shared transactions).
pub(super) struct Writer<J> {
    queue: Arc<OnceLock<mpsc::Sender<J>>>,
}

impl<J> Clone for Writer<J> {
    fn clone(&self) -> Self {
        Writer { queue: self.queue.clone() }
    }
}

impl<J> Default for Writer<J> {
    fn default() -> Self {
        Writer { queue: Arc::default() }
    }
}

impl<J> Writer<J> {
    /// Queues `job`, first starting the writer with `start` (given the receiving end)
    /// if it is not running yet; gives the job back when the writer has stopped.
    pub(super) async fn send(&self, job: J, start: impl FnOnce(mpsc::Receiver<J>)) -> std::result::Result<(), J> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            start(rx);
            tx
        });
        queue.send(job).await.map_err(|mpsc::error::SendError(job)| job)
    }
}

async fn run(store: Store, queue: mpsc::Receiver<Job>) {
    batches(store, queue, LANES, MAX_GROUP, |store, jobs| async move { write(&store, jobs).await }).await
}

/// Takes what waits in `queue` in batches of at most `max` and hands each to `handle`
/// on a task of its own, with at most `lanes` batches at work at once; returns when the
/// queue's last sender is gone.
pub(super) async fn batches<J, F, Fut>(store: Store, mut queue: mpsc::Receiver<J>, lanes: usize, max: usize, handle: F)
where
    J: Send + 'static,
    F: Fn(Store, Vec<J>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let lanes = Arc::new(Semaphore::new(lanes));
    loop {
        let Ok(lane) = lanes.clone().acquire_owned().await else { return };
        let Some(first) = queue.recv().await else { return };
        let mut jobs = vec![first];
        while jobs.len() < max {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let work = handle(store.clone(), jobs);
        tokio::spawn(async move {
            work.await;
            drop(lane);
        });
    }
}

async fn write(store: &Store, mut jobs: Vec<Job>) {
    if jobs.len() == 1 {
        if let Some(j) = jobs.pop() {
            let _ = j.reply.send(store.create_alone(j.new).await);
        }
        return;
    }
    let news: Vec<&NewResource> = jobs.iter().map(|j| &j.new).collect();
    match together(store, &news).await {
        Ok(mut pks) => {
            for j in jobs {
                let r = match pks.remove(&j.new.id) {
                    Some(pk) => Ok(j.new.stored(pk)),
                    None => Err(anyhow::anyhow!("the group create returned no key for {}", j.new.id).into()),
                };
                let _ = j.reply.send(r);
            }
        }
        Err(e) => {
            // The statement is atomic: nothing of the group was written. Each create
            // goes again alone, so that one bad row fails only its own request.
            tracing::warn!(error = %e, creates = jobs.len(), "group create failed; writing each alone");
            for j in jobs {
                let _ = j.reply.send(store.create_alone(j.new).await);
            }
        }
    }
}

/// Writes `news` (distinct new ids) in one statement, so all or none (PostgreSQL);
/// the key of each resource by id.
pub(super) async fn together(store: &Store, news: &[&NewResource]) -> Result<HashMap<String, i64>> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(cupola_search::group_create_sql);
    let items: Vec<cupola_search::GroupItem<'_>> = news
        .iter()
        .map(|n| cupola_search::GroupItem {
            res_type: &n.res_type,
            id: &n.id,
            last_updated: n.now,
            body: &n.packed,
            rows: &n.rows,
        })
        .collect();
    let binds = cupola_search::group_create_binds(&items);
    let mut c = store.conn().await?;
    let r = sqlx::query_with(sql, into_arguments(binds)).fetch_all(&mut *c).await;
    let rows = c.done(r)?;
    tracing::debug!(creates = news.len(), "group create");
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        out.insert(row.try_get::<String, _>("res_id")?, row.try_get::<i64, _>("pk")?);
    }
    Ok(out)
}
