//! The writer's groups on a SQLite file: units queued together commit together, a
//! unit rolled back takes only its own work, a group that is lost answers errors
//! (never a success), and the wait for a turn is bounded.

use std::sync::Arc;
use std::time::Duration;

use super::super::{Store, Tx};
use crate::Error;

async fn store(wait: Duration) -> (Store, tempfile::TempDir) {
    let registry = Arc::new(crate::fhir::names::registry("http://example.org/cupola"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("writer.db").display());
    let store = Store::connect(&url, 4, wait, registry).await.expect("the store opens");
    let mut tx = store.begin().await.expect("a transaction");
    sqlx::query("CREATE TABLE t (x BIGINT)").execute(&mut *tx).await.expect("a table");
    tx.commit().await.expect("committed");
    (store, dir)
}

async fn insert(tx: &mut Tx, x: i64) {
    sqlx::query("INSERT INTO t (x) VALUES ($1)").bind(x).execute(&mut **tx).await.expect("a row");
}

/// The rows committed, as a reader on another connection sees them.
async fn rows(store: &Store) -> Vec<i64> {
    let mut c = store.conn().await.expect("a connection");
    let r = sqlx::query_scalar("SELECT x FROM t ORDER BY x").fetch_all(&mut *c).await;
    c.done(r).expect("read")
}

/// Begins a transaction on a task of its own, once `first` holds the writer.
fn queued(store: &Store) -> tokio::task::JoinHandle<Tx> {
    let store = store.clone();
    tokio::spawn(async move { store.begin().await.expect("a turn") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_unit_takes_only_its_own_work_from_the_group() {
    let (store, _dir) = store(Duration::from_secs(5)).await;
    let mut a = store.begin().await.expect("a turn");
    let (mut b, mut c) = (queued(&store), queued(&store));
    tokio::time::sleep(Duration::from_millis(100)).await;
    insert(&mut a, 1).await;
    // B and C wait for the writer: A's work waits in the group for its COMMIT.
    let a_done = tokio::spawn(a.commit());
    // B and C queued in an order of their own: the first to get the writer fails.
    let (first, second) = tokio::select! { r = &mut b => (r, c), r = &mut c => (r, b) };
    let mut first = first.expect("the first turn");
    insert(&mut first, 2).await;
    drop(first);
    let mut c = second.await.expect("the second turn");
    insert(&mut c, 3).await;
    c.commit().await.expect("C committed");
    a_done.await.expect("a").expect("A committed");
    assert_eq!(rows(&store).await, [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_group_answers_each_of_its_callers_with_an_error() {
    let (store, _dir) = store(Duration::from_secs(5)).await;
    let mut a = store.begin().await.expect("a turn");
    let b = queued(&store);
    tokio::time::sleep(Duration::from_millis(100)).await;
    insert(&mut a, 1).await;
    let a_done = tokio::spawn(a.commit());
    let mut b = b.await.expect("b");
    // What SQLite does to the whole transaction on some errors (disk full, I/O).
    sqlx::query("ROLLBACK").execute(&mut *b).await.expect("rolled back");
    drop(b);
    assert!(matches!(a_done.await.expect("a"), Err(Error::Busy(_))));
    assert!(rows(&store).await.is_empty());
    // The writer goes on with the next group.
    let mut d = store.begin().await.expect("a turn");
    insert(&mut d, 4).await;
    d.commit().await.expect("D committed");
    assert_eq!(rows(&store).await, [4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_for_the_writer_is_bounded_by_the_busy_timeout() {
    let (store, _dir) = store(Duration::from_millis(200)).await;
    let held = store.begin().await.expect("a turn");
    let asked = std::time::Instant::now();
    assert!(matches!(store.begin().await, Err(Error::Busy(_))));
    assert!(asked.elapsed() < Duration::from_secs(2));
    drop(held);
    let mut next = store.begin().await.expect("the writer is free again");
    insert(&mut next, 5).await;
    next.commit().await.expect("committed");
    assert_eq!(rows(&store).await, [5]);
}
