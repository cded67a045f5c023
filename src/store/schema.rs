//! Migrations, run at start-up. Each is SQL for both backends, with `{pk}` and
//! `{blob}` standing for the two types whose spelling differs. Applied migrations are
//! recorded in `cupola_migrations`; on PostgreSQL an advisory lock keeps two gateways
//! starting at once from running them twice.

use cupola_search::Dialect;

use super::Store;

/// Resources (one row per logical resource, its current version) and every version.
const CORE: &str = "
CREATE TABLE IF NOT EXISTS resources (
    pk {pk},
    res_type TEXT NOT NULL,
    res_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,   -- µs since the Unix epoch, UTC
    deleted BOOLEAN NOT NULL,
    UNIQUE (res_type, res_id)
);
CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (res_type, last_updated);
CREATE TABLE IF NOT EXISTS resource_versions (
    res_pk BIGINT NOT NULL REFERENCES resources (pk),
    version BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    method TEXT NOT NULL,           -- POST, PUT or DELETE: what made this version
    body TEXT,                      -- the resource as served, NULL for a deletion
    PRIMARY KEY (res_pk, version)
);
CREATE INDEX IF NOT EXISTS resource_versions_updated ON resource_versions (last_updated);
";

const BOOKING: &str = "
CREATE TABLE IF NOT EXISTS slot_claims (
    appointment TEXT NOT NULL,
    slot TEXT NOT NULL,
    expires_us BIGINT,              -- a hold's expiry, NULL for a booking
    holder TEXT,                    -- who took the place (token sub)
    PRIMARY KEY (appointment, slot)
);
CREATE INDEX IF NOT EXISTS slot_claims_slot ON slot_claims (slot);
CREATE INDEX IF NOT EXISTS slot_claims_expiry ON slot_claims (expires_us) WHERE expires_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS booking_codes (
    code TEXT PRIMARY KEY,
    appointment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
    appointment TEXT PRIMARY KEY,
    expires_us BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_expiry ON proposals (expires_us)
";

/// 8: one row per booking made, for the waiting-time figures (see `bookings`).
const BOOKINGS: &str = "
CREATE TABLE IF NOT EXISTS bookings (
    appointment TEXT PRIMARY KEY,
    booked_us BIGINT NOT NULL,
    start_us BIGINT NOT NULL,
    requested_us BIGINT NOT NULL,   -- the prescription's first request, else the booking
    wait_us BIGINT NOT NULL,
    service TEXT,
    branch TEXT,
    district TEXT,
    class TEXT,
    channel TEXT,
    provider TEXT,
    deadline_us BIGINT,
    met INTEGER                     -- 1 or 0 when there was a deadline, else NULL
);
CREATE INDEX IF NOT EXISTS bookings_booked ON bookings (booked_us)
";

/// Tickets (see `tickets`): amounts in cents, summed in SQL. `seq` numbers the
/// pagoPA notices.
const TICKETS: &str = "
CREATE TABLE IF NOT EXISTS tickets (
    seq {pk},
    invoice TEXT NOT NULL UNIQUE,
    prescription TEXT NOT NULL UNIQUE,  -- the NRE, or Appointment/<id> without one
    nre TEXT,
    patient TEXT NOT NULL,
    notice TEXT UNIQUE,
    iuv TEXT UNIQUE,
    status TEXT NOT NULL,               -- issued, balanced, cancelled
    owed_cents BIGINT NOT NULL,
    paid_cents BIGINT NOT NULL,
    booked_us BIGINT NOT NULL,          -- the rules of this day apply
    service_us BIGINT,                  -- the last service performed or missed
    stage TEXT,                         -- credit recovery
    stage_us BIGINT
);
CREATE INDEX IF NOT EXISTS tickets_patient ON tickets (patient, status);
CREATE INDEX IF NOT EXISTS tickets_overdue ON tickets (status, service_us);
CREATE TABLE IF NOT EXISTS ticket_lines (
    charge_item TEXT PRIMARY KEY,
    invoice TEXT NOT NULL,
    appointment TEXT NOT NULL,
    request TEXT,
    code TEXT NOT NULL,
    provider TEXT NOT NULL,
    tariff_cents BIGINT NOT NULL,
    share_cents BIGINT NOT NULL,
    exemption TEXT,
    billable BIGINT NOT NULL,
    missed BIGINT NOT NULL,
    channel TEXT NOT NULL,
    point TEXT,
    booking_code TEXT,
    booked_us BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_lines_invoice ON ticket_lines (invoice);
CREATE INDEX IF NOT EXISTS ticket_lines_appointment ON ticket_lines (appointment);
CREATE INDEX IF NOT EXISTS ticket_lines_booked ON ticket_lines (booked_us);
CREATE TABLE IF NOT EXISTS payments (
    point TEXT NOT NULL,
    reference TEXT NOT NULL,
    notice TEXT NOT NULL,               -- the PaymentNotice
    invoice TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,       -- negative: a refund
    channel TEXT NOT NULL,
    day TEXT NOT NULL,
    paid_us BIGINT NOT NULL,
    PRIMARY KEY (point, reference)
);
CREATE INDEX IF NOT EXISTS payments_paid ON payments (paid_us);
CREATE INDEX IF NOT EXISTS payments_invoice ON payments (invoice);
CREATE TABLE IF NOT EXISTS payment_shares (
    notice TEXT NOT NULL,
    invoice TEXT NOT NULL,
    provider TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    PRIMARY KEY (notice, provider)
);
CREATE INDEX IF NOT EXISTS payment_shares_invoice ON payment_shares (invoice);
CREATE TABLE IF NOT EXISTS remittances (
    point TEXT NOT NULL,
    day TEXT NOT NULL,
    reconciliation TEXT NOT NULL,
    PRIMARY KEY (point, day)
)
";

/// The outbox (see `outbox`): one row per message, written with the change it tells of.
const OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq {pk},
    message_id TEXT NOT NULL UNIQUE,    -- the MessageHeader id, the AMQP message id
    provider TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    event TEXT NOT NULL,
    focus TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,               -- pending, sent, failed (held, with the reason)
    reason TEXT,
    attempts BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    lease_us BIGINT,                    -- claimed by a relay until then
    sent_us BIGINT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, seq)
";

/// The index rows migration 16 removed: those of the R4 parameters that narrow others
/// (`cupola_search` finds them from their expressions; a test keeps the two equal).
const NARROWED: &[(&str, &str)] = &[
    ("Account", "patient"),
    ("Appointment", "location"),
    ("Appointment", "patient"),
    ("Appointment", "practitioner"),
    ("AppointmentResponse", "location"),
    ("AppointmentResponse", "patient"),
    ("AppointmentResponse", "practitioner"),
    ("AuditEvent", "patient"),
    ("ChargeItem", "patient"),
    ("Communication", "patient"),
    ("Invoice", "patient"),
    ("ServiceRequest", "patient"),
];

fn narrowed_rows() -> String {
    let each: Vec<String> = NARROWED.iter().map(|(t, p)| format!("(res_type = '{t}' AND param = '{p}')")).collect();
    each.join(" OR ")
}

/// 9: reserved slots in start order, for `$find`'s searches of slots kept for a
/// class or released (few of them: the service index would scan every slot).
const SLOTS_RESERVED: &str =
    "CREATE INDEX IF NOT EXISTS slot_grid_reserved ON slot_grid (svc_code, start_us) WHERE reserve IS NOT NULL";

/// 12: what providers answered (delivery), and the inbound messages processed once.
const INBOUND: &str = "ALTER TABLE outbox ADD COLUMN delivery TEXT;\n\
     CREATE TABLE IF NOT EXISTS inbound_messages (message_id TEXT PRIMARY KEY, provider TEXT NOT NULL, \
     event TEXT NOT NULL, received_us BIGINT NOT NULL, response TEXT NOT NULL)";

/// 14: the outbox's message bodies apart from the rows the relay rewrites.
const OUTBOX_BODIES: &str =
    "CREATE TABLE IF NOT EXISTS outbox_bodies (message_id TEXT PRIMARY KEY, body TEXT NOT NULL);\n\
     INSERT INTO outbox_bodies (message_id, body) SELECT message_id, body FROM outbox WHERE body <> '' \
     ON CONFLICT (message_id) DO NOTHING;\n\
     UPDATE outbox SET body = ''";

/// 15: references by identifier (`:identifier`) are few; the rest of the rows
/// (reference by id or url, audit agents…) need not be in that index at all.
const REFERENCE_IDENTIFIERS: &str = "DROP INDEX IF EXISTS idx_reference_4;\n\
     CREATE INDEX IF NOT EXISTS idx_reference_4 ON idx_reference (res_type, param, ident_value) \
     WHERE ident_value IS NOT NULL";

/// 17: `raw` is searched only for absolute and `urn:` references (`RefUrl`); the
/// relative ones (`Patient/1`, most rows: every audited read's entity) are found
/// by type and id and need not be in that index: one B-tree entry fewer each.
fn reference_raw() -> String {
    format!(
        "DROP INDEX IF EXISTS idx_reference_3;\n\
         CREATE INDEX IF NOT EXISTS idx_reference_3 ON idx_reference (res_type, param, raw) WHERE {}",
        cupola_search::RAW_INDEXED
    )
}

/// 19: the relay's claim token (a mark must present the token of the claim that
/// still holds the row), and how often in a row the broker returned a message
/// no queue took (status `unroutable`; its backoff grows with it).
const CLAIM_TOKEN: &str = "ALTER TABLE outbox ADD COLUMN claim_token BIGINT;\n\
     ALTER TABLE outbox ADD COLUMN unrouted BIGINT NOT NULL DEFAULT 0";

/// 20: the integration desk (issue 32). When a provider acknowledged a message; how
/// often, when, and as what an operator resent it (or what it was resent from); a
/// provider's rows by position, so that its listing reads its rows alone (one index
/// entry more per message written), and its acknowledgements by time (a partial
/// index: only acknowledged rows have an entry, a booking's message adds none).
const RESENDS: &str = "ALTER TABLE outbox ADD COLUMN acked_us BIGINT;\n\
     ALTER TABLE outbox ADD COLUMN resends BIGINT NOT NULL DEFAULT 0;\n\
     ALTER TABLE outbox ADD COLUMN resent_us BIGINT;\n\
     ALTER TABLE outbox ADD COLUMN resent_as TEXT;\n\
     ALTER TABLE outbox ADD COLUMN resent_from TEXT;\n\
     CREATE INDEX IF NOT EXISTS outbox_provider ON outbox (provider, seq);\n\
     CREATE INDEX IF NOT EXISTS outbox_acked ON outbox (provider, acked_us) WHERE acked_us IS NOT NULL";

/// 22: FHIR Subscriptions (see `subscriptions`, `notifications`): each one's owner,
/// topic, channel and headers (never in the resource), its filters, and its events.
const SUBSCRIPTIONS: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    owner_sub TEXT NOT NULL,
    owner_role TEXT NOT NULL,
    owner_org TEXT,
    owner_patient TEXT,
    owner_channel TEXT,
    owner_scopes TEXT NOT NULL,
    topic TEXT NOT NULL,
    res_type TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    endpoint TEXT,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    heartbeat_s BIGINT,
    filters BIGINT NOT NULL DEFAULT 0,   -- how many filter rows: none, it matches every change
    events BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    next_try_us BIGINT
);
CREATE INDEX IF NOT EXISTS subscriptions_type ON subscriptions (res_type, filters, topic);
CREATE INDEX IF NOT EXISTS subscriptions_owner ON subscriptions (owner_sub);
CREATE TABLE IF NOT EXISTS subscription_filters (
    subscription TEXT NOT NULL,
    name TEXT NOT NULL,
    param TEXT NOT NULL,
    kind TEXT NOT NULL,
    system TEXT,
    code TEXT NOT NULL,
    target_type TEXT
);
CREATE INDEX IF NOT EXISTS subscription_filters_of ON subscription_filters (subscription, name);
CREATE INDEX IF NOT EXISTS subscription_filters_value ON subscription_filters (param, code);
CREATE TABLE IF NOT EXISTS subscription_events (
    seq {pk},
    subscription TEXT NOT NULL,
    focus TEXT NOT NULL,
    version BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    number BIGINT,
    delivered_us BIGINT,
    attempts BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscription_events_new ON subscription_events (seq) WHERE number IS NULL;
CREATE INDEX IF NOT EXISTS subscription_events_of ON subscription_events (subscription, number);
CREATE INDEX IF NOT EXISTS subscription_events_due ON subscription_events (subscription, number) \
    WHERE delivered_us IS NULL
";
/// 23: the websocket binding tokens (see `binding_tokens`): a token's SHA-256 (the
/// token itself is never stored), the subscription it binds, when it expires.
/// A table, not memory: any gateway process may be the one the socket reaches.
const BINDING_TOKENS: &str = "CREATE TABLE IF NOT EXISTS subscription_tokens (token_hash TEXT PRIMARY KEY, \
     subscription TEXT NOT NULL, expires_us BIGINT NOT NULL);\n\
     CREATE INDEX IF NOT EXISTS subscription_tokens_expiry ON subscription_tokens (expires_us)";

/// 21: the waiting lists (see `store::waitlist`): one row per Appointment in line;
/// `offered` is the slot offered to it, while the offer is out.
const WAITLIST: &str = "CREATE TABLE IF NOT EXISTS waitlist (appointment TEXT PRIMARY KEY, patient TEXT NOT NULL, \
     service TEXT NOT NULL, class TEXT NOT NULL, district TEXT, location TEXT, from_us BIGINT NOT NULL, \
     to_us BIGINT NOT NULL, enrolled_us BIGINT NOT NULL, holder TEXT, offered TEXT);\n\
     CREATE INDEX IF NOT EXISTS waitlist_line ON waitlist (service, enrolled_us);\n\
     CREATE INDEX IF NOT EXISTS waitlist_patient ON waitlist (patient)";

/// 24: bodies are kept as bytes, compressed (see `body`); the texts written before
/// stay as they were, as bytes. SQLite keeps bytes in a TEXT column as they are.
fn packed_bodies(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            "ALTER TABLE resource_versions ALTER COLUMN body TYPE BYTEA USING convert_to(body, 'UTF8');\n\
             ALTER TABLE outbox_bodies ALTER COLUMN body TYPE BYTEA USING convert_to(body, 'UTF8')"
        }
    }
}

/// 25: the answers to providers' messages, kept for their retries, as bodies are.
fn packed_responses(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            "ALTER TABLE inbound_messages ALTER COLUMN response TYPE BYTEA USING convert_to(response, 'UTF8')"
        }
    }
}

/// Migration list: (version, SQL). Never edit an applied one; add a new one.
fn migrations(d: Dialect) -> Vec<(i64, String)> {
    let (pk, blob) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
    };
    let core = CORE.replace("{pk}", pk).replace("{blob}", blob);
    let index = cupola_search::index_schema(d).join(";\n");
    // 3: idx_token_2 became (res_type, param, system, code); rebuilt from the schema.
    let reindex = format!("DROP INDEX IF EXISTS idx_token_2;\n{index}");
    // 4: generated slots in their compact table (see `cupola_search`'s grid module).
    let grid = cupola_search::grid_schema(d).join(";\n");
    // 5: the places appointments take in slots, and booking codes (see `claims`).
    // 6: when each prescription was first asked for (its deadline runs from then).
    let clock = "CREATE TABLE IF NOT EXISTS prescription_clock (nre TEXT PRIMARY KEY, first_us BIGINT NOT NULL)";
    // 7: prescriptions whose patient declined a proposal within the deadline.
    let waivers = "CREATE TABLE IF NOT EXISTS guarantee_waivers (nre TEXT PRIMARY KEY, response TEXT NOT NULL, at_us BIGINT NOT NULL)";
    vec![
        (1, core),
        (2, index),
        (3, reindex),
        (4, grid),
        (5, BOOKING.to_string()),
        (6, clock.to_string()),
        (7, waivers.to_string()),
        (8, BOOKINGS.to_string()),
        (9, SLOTS_RESERVED.into()),
        (10, TICKETS.replace("{pk}", pk)),
        (11, OUTBOX.replace("{pk}", pk)),
        (12, INBOUND.into()),
        // 13: the day's appointments, for the daily lists.
        (13, "CREATE INDEX IF NOT EXISTS bookings_start ON bookings (start_us)".into()),
        (14, OUTBOX_BODIES.into()),
        (15, REFERENCE_IDENTIFIERS.into()),
        // 16: parameters that narrow others to one target type (`Appointment.patient`
        // is `actor` to a Patient) are searched in those rows and have none of their own.
        (16, format!("DELETE FROM idx_reference WHERE {}", narrowed_rows())),
        (17, reference_raw()),
        // 18: index columns hold a text's first characters, the whole value beside
        // them when longer (a long one broke PostgreSQL's index: see `cupola_search`).
        (18, cupola_search::long_values_schema(d).join(";\n")),
        (19, CLAIM_TOKEN.into()),
        (20, RESENDS.into()),
        (21, WAITLIST.into()),
        (22, SUBSCRIPTIONS.replace("{pk}", pk)),
        (23, BINDING_TOKENS.into()),
        (24, packed_bodies(d).into()),
        (25, packed_responses(d).into()),
    ]
}

pub(super) async fn migrate(store: &Store) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    if store.dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(4242001)").execute(&mut *tx).await?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS cupola_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM cupola_migrations").fetch_all(&mut *tx).await?;
    for (version, sql) in migrations(store.dialect) {
        if applied.contains(&version) {
            continue;
        }
        tracing::info!(version, "applying migration");
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO cupola_migrations (version, applied) VALUES ($1, $2)")
            .bind(version)
            .bind(super::now_micros())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Migration 16 removed the rows of exactly the parameters the search crate no
    /// longer writes rows for.
    #[test]
    fn migration_16_lists_the_narrowing_parameters() {
        let listed: Vec<(String, String)> =
            super::NARROWED.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect();
        assert_eq!(cupola_search::Registry::r4().narrowing_params(), listed);
    }
}
