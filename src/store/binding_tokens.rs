//! The websocket binding tokens: kept in the database, not in a process's memory,
//! so that whichever gateway process a client's socket reaches can check one.
//! Only a token's SHA-256 is stored; the domain makes and checks the tokens.

use super::Store;
use crate::Result;

impl Store {
    /// Records the token hashed `hash` for subscription `id`, valid until
    /// `expires_us`; the tokens expired at `now_us` go.
    pub async fn add_binding_token(&self, hash: &str, id: &str, now_us: i64, expires_us: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM subscription_tokens WHERE expires_us < $1").bind(now_us).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO subscription_tokens (token_hash, subscription, expires_us) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(id)
            .bind(expires_us)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the token hashed `hash` (it binds once): its subscription and expiry,
    /// or `None` when there is no such token (never issued, or already used).
    pub async fn take_binding_token(&self, hash: &str) -> Result<Option<(String, i64)>> {
        let mut c = self.write_conn().await?;
        let r =
            sqlx::query_as("DELETE FROM subscription_tokens WHERE token_hash = $1 RETURNING subscription, expires_us")
                .bind(hash)
                .fetch_optional(&mut *c)
                .await;
        c.done(r).await
    }
}
