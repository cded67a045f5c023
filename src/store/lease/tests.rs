//! Claims and fenced marks against SQLite and the machine's PostgreSQL
//! (`CUPOLA_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::sync::Arc;
use std::time::Duration;

use super::super::{Dialect, Store};

/// A store on a fresh database, and what removes it.
struct Fresh {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Fresh {
    async fn open(d: Dialect) -> Fresh {
        let registry = Arc::new(crate::fhir::names::registry("http://example.org/cupola"));
        let (url, dir, pg) = match d {
            Dialect::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                (format!("sqlite://{}", dir.path().join("lease.db").display()), Some(dir), None)
            }
            Dialect::Postgres => {
                let admin = std::env::var("CUPOLA_TEST_PG")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let name = format!("cupola_lease_{}", uuid::Uuid::new_v4().simple());
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.expect("a test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_default();
                (format!("{base}/{name}"), None, Some((admin, name)))
            }
        };
        let store = Store::connect(&url, 4, Duration::from_secs(30), registry).await.expect("the store opens");
        Fresh { store, _dir: dir, pg }
    }

    async fn close(self) {
        let Some((admin, name)) = self.pg else { return };
        drop(self.store);
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect("PostgreSQL");
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
    }

    /// Writes `n` pending messages.
    async fn pending(&self, n: usize) {
        let mut tx = self.store.begin().await.expect("a transaction");
        for i in 0..n {
            sqlx::query(
                "INSERT INTO outbox (message_id, provider, routing_key, event, focus, body, status, attempts, \
                 created_us) VALUES ($1, 'p', 'p.appointment.booked', 'appointment-booked', 'Appointment/x', '', \
                 'pending', 0, 1)",
            )
            .bind(format!("m{i}"))
            .execute(&mut *tx)
            .await
            .expect("a row");
        }
        tx.commit().await.expect("committed");
    }

    async fn row(&self, seq: i64) -> crate::store::OutboxRow {
        let all = crate::store::OutboxQuery { limit: 100, ..Default::default() };
        let rows = self.store.outbox(&all).await.expect("the outbox");
        rows.into_iter().find(|r| r.seq == seq).expect("the row")
    }
}

/// Relay A's lease runs out, relay B claims the rows with a token of its own: A's
/// marks touch nothing, B's mark them.
async fn a_lapsed_claim_marks_nothing(d: Dialect) {
    let db = Fresh::open(d).await;
    db.pending(3).await;
    let a = db.store.claim(10, 1).await.expect("A claims");
    assert_eq!(a.rows.len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = db.store.claim(10, 30_000_000).await.expect("B claims");
    let seqs: Vec<i64> = b.rows.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, a.rows.iter().map(|m| m.seq).collect::<Vec<_>>(), "A's lease ran out: B takes its rows");
    assert_ne!(a.token, b.token);
    assert!(db.store.claim(10, 30_000_000).await.expect("C claims").rows.is_empty(), "B's lease holds");
    assert_eq!(db.store.mark_sent(a.token, &seqs).await.expect("A marks"), 0);
    assert_eq!(db.store.release(a.token, &seqs).await.expect("A releases"), 0);
    let why = "returned".to_string();
    assert_eq!(db.store.mark_unroutable(a.token, &[(seqs[0], why)]).await.expect("A marks"), 0);
    assert_eq!(db.row(seqs[0]).await.status, "pending", "A changed nothing");
    assert_eq!(db.store.mark_sent(b.token, &seqs).await.expect("B marks"), 3);
    for seq in &seqs {
        assert_eq!(db.row(*seq).await.status, "sent");
    }
    db.close().await;
}

/// A claim's lease is reckoned in µs since the epoch by the database's clock; an
/// unroutable row waits 1 s, then 2 s, and is claimed again once that has passed.
async fn unroutable_rows_wait_their_backoff(d: Dialect) {
    let db = Fresh::open(d).await;
    db.pending(1).await;
    let before = crate::store::now_micros();
    let a = db.store.claim(10, 30_000_000).await.expect("a claim");
    let seq = a.rows[0].seq;
    let why = "returned by the broker: 312 NO_ROUTE".to_string();
    assert_eq!(db.store.mark_unroutable(a.token, &[(seq, why.clone())]).await.expect("marked"), 1);
    let row = db.row(seq).await;
    assert_eq!((row.status.as_str(), row.reason.as_deref()), ("unroutable", Some(why.as_str())));
    let next = row.next_attempt_us.expect("a next attempt") - before;
    assert!((900_000..3_000_000).contains(&next), "about 1 s later: {next} µs");
    assert!(db.store.claim(10, 30_000_000).await.expect("a claim").rows.is_empty(), "in its backoff");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = db.store.claim(10, 30_000_000).await.expect("a claim");
    assert_eq!(b.rows.iter().map(|m| m.seq).collect::<Vec<_>>(), [seq], "due again");
    let before = crate::store::now_micros();
    assert_eq!(db.store.mark_unroutable(b.token, &[(seq, why)]).await.expect("marked"), 1);
    let next = db.row(seq).await.next_attempt_us.expect("a next attempt") - before;
    assert!((1_900_000..4_000_000).contains(&next), "about 2 s later: {next} µs");
    assert_eq!(db.store.mark_sent(b.token, &[seq]).await.expect("sent"), 1, "the claim still holds it");
    let row = db.row(seq).await;
    assert_eq!((row.status.as_str(), row.next_attempt_us), ("sent", None));
    db.close().await;
}

/// Each test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Dialect::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Dialect::Postgres).await } )*
        }
    };
}

on_both!(a_lapsed_claim_marks_nothing, unroutable_rows_wait_their_backoff);
