//! PostgreSQL's upkeep where its autovacuum does not run. Without statistics the
//! planner guesses every index table holds a handful of rows and drives a search
//! from the wrong one: in the year replay (a server with `autovacuum = off`) a
//! patient's "any live appointment?" scanned all 9,000 appointments' status rows,
//! 217 ms, where the patient's own rows answer in under 1 ms. So the gateway
//! vacuums and analyzes its own tables when the server would not, by autovacuum's
//! own default thresholds; with autovacuum on it leaves them to the server.

use cupola_search::Dialect;

use super::Store;
use crate::Result;

/// Autovacuum's defaults (`autovacuum_analyze_threshold` 50 +
/// `autovacuum_analyze_scale_factor` 0.1, `autovacuum_vacuum_threshold` 50 +
/// `autovacuum_vacuum_scale_factor` 0.2): the changes past which a table is due.
const DUE: &str = "(s.n_mod_since_analyze > 50 + 0.1 * s.n_live_tup OR s.n_dead_tup > 50 + 0.2 * s.n_live_tup)";

impl Store {
    /// Whether PostgreSQL's autovacuum runs at all (`false` on SQLite, which has none).
    pub async fn autovacuum_on(&self) -> Result<bool> {
        if self.dialect != Dialect::Postgres {
            return Ok(false);
        }
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar::<_, String>("SELECT current_setting('autovacuum')").fetch_one(&mut *c).await;
        Ok(c.done(r)? == "on")
    }

    /// The gateway's PostgreSQL tables autovacuum leaves alone (the server's
    /// `autovacuum` off, or the table's `autovacuum_enabled = false`) that changed
    /// past its thresholds since their last VACUUM / ANALYZE; none on SQLite.
    pub async fn tables_due_upkeep(&self) -> Result<Vec<String>> {
        if self.dialect != Dialect::Postgres {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT CAST(s.relname AS TEXT) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE s.schemaname = current_schema() AND (current_setting('autovacuum') = 'off' \
             OR 'autovacuum_enabled=false' = ANY(COALESCE(c.reloptions, '{{}}'))) AND {DUE} ORDER BY s.relname"
        );
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar(&sql).fetch_all(&mut *c).await;
        c.done(r)
    }

    /// `VACUUM (ANALYZE)` of one table (a name [`Store::tables_due_upkeep`] gave),
    /// on one of the pool's connections: it does not block the table's readers or
    /// writers, and the tables go one at a time.
    pub async fn vacuum_analyze(&self, table: &str) -> Result<()> {
        let sql = format!("VACUUM (ANALYZE) \"{}\"", table.replace('"', "\"\""));
        let mut c = self.conn().await?;
        let r = sqlx::query(&sql).execute(&mut *c).await;
        c.done(r).map(|_| ())
    }
}
