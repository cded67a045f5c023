//! Every setting of `cupola serve`: its flag, its `CUPOLA_*` variable and its default,
//! in one table.

use clap::Args;

/// Settings of the gateway (`cupola serve`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the HTTP API listens on.
    #[arg(long, env = "CUPOLA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Address and port of a listener serving only `GET /metrics`, without a token
    /// (bind it where only the scraper reaches). Without it, `/metrics` is served on
    /// `--listen`, to administrators' tokens only.
    #[arg(long, env = "CUPOLA_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// The canonical store: `sqlite://FILE` (embedded default, created if missing) or
    /// `postgres://user@host:port/db` (production).
    #[arg(long, env = "CUPOLA_DATABASE_URL", default_value = "sqlite://cupola.db")]
    pub database_url: String,

    /// Base URL of every CodeSystem, extension, profile and identifier system cupola
    /// defines; a region sets its own.
    #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
    pub canonical_base: String,

    /// Public base URL of the FHIR API, used in `Location` headers and Bundle links;
    /// default `http://{listen}/fhir`.
    #[arg(long, env = "CUPOLA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest request body accepted, in bytes (larger → 413).
    #[arg(long, env = "CUPOLA_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest number of database connections in the pool. About twice the cores plus
    /// one: more connections than the database can run at once only make it switch
    /// between them (measured: 16 gave a worse read p99 than 4–6 on 2 cores); requests
    /// beyond it wait their turn in the gateway.
    #[arg(long, env = "CUPOLA_DB_MAX_CONNECTIONS", default_value_t = 5)]
    pub db_max_connections: u32,

    /// Seconds a request waits for a database connection, or on SQLite for its turn at
    /// the one writer (and another process's lock), before answering 503 with
    /// `Retry-After`.
    #[arg(long, env = "CUPOLA_DB_BUSY_TIMEOUT_SECS", default_value_t = 5)]
    pub db_busy_timeout_secs: u64,

    /// Seconds between the gateway's upkeep of its PostgreSQL tables where the
    /// server's autovacuum does not run (`VACUUM (ANALYZE)` of those changed past
    /// autovacuum's default thresholds; see docs/operations.md); 0: never.
    #[arg(long, env = "CUPOLA_DB_UPKEEP_SECS", default_value_t = 60)]
    pub db_upkeep_secs: u64,

    /// Load the demo data set into an empty store at start-up.
    #[arg(long, env = "CUPOLA_DEMO")]
    pub demo: bool,

    /// The region's code maps and rules (see `mappings/README.md`), checked at start-up.
    #[arg(long, env = "CUPOLA_MAPPINGS_DIR", default_value = "mappings")]
    pub mappings_dir: std::path::PathBuf,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub console: ConsoleConfig,

    #[command(flatten)]
    pub booking: BookingConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub notify: crate::notify::NotifyConfig,

    /// Longest time, in milliseconds, an AuditEvent waits in memory before it is
    /// written (audit rows are written off the request path, in batches).
    #[arg(long, env = "CUPOLA_AUDIT_FLUSH_MS", default_value_t = 100)]
    pub audit_flush_ms: u64,

    /// RabbitMQ (`amqp://user:password@host:5672/vhost`) the outbox relay publishes
    /// the providers' messages to. Without it, messages wait in the outbox
    /// (`GET /fhir/$outbox`) and flow once a broker is configured.
    #[arg(long, env = "CUPOLA_AMQP_URL")]
    pub amqp_url: Option<String>,

    /// The topic exchange (and prefix of the queues) the gateway declares and
    /// publishes to; default the `exchange` of `mappings/messaging/routing.json`.
    #[arg(long, env = "CUPOLA_AMQP_EXCHANGE")]
    pub amqp_exchange: Option<String>,

    /// Local time (Europe/Rome, `HH:MM`) at which every provider gets its daily
    /// appointment list of the day; none: only on demand (`cupola dispatch-lists`).
    #[arg(long, env = "CUPOLA_DAILY_LISTS_AT")]
    pub daily_lists_at: Option<chrono::NaiveTime>,

    /// Hours the Bundle of a message its provider acknowledged `ok` is kept; then
    /// only the message's row stays (who was told what, when, and their answer), and
    /// `$resend` of it answers 410. Messages not acknowledged `ok` keep their body.
    #[arg(long, env = "CUPOLA_OUTBOX_BODY_RETENTION_HOURS", default_value_t = 2160)]
    pub outbox_body_retention_hours: u64,

    /// Seconds between sweeps of the bodies past their retention (tests shorten it).
    #[arg(skip = 60_u64)]
    pub outbox_retention_sweep_secs: u64,
}

/// Who may call: how bearer tokens are checked (and, without an issuer, the
/// development key that signs and checks them). Shared by `serve` and `token`.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// The token issuer (`iss`) accepted. Without it, cupola signs and checks its own
    /// tokens with the development key (`--dev-key-file`).
    #[arg(long, env = "CUPOLA_ISSUER")]
    pub issuer: Option<String>,

    /// The keys of the issuer: a JWKS file path or an `https://` / `http://` URL.
    /// Required with `--issuer`.
    #[arg(long, env = "CUPOLA_JWKS")]
    pub jwks: Option<String>,

    /// Seconds between two fetches of `--jwks`, so that the issuer can rotate its keys
    /// without a restart. A failed fetch keeps the keys fetched before.
    #[arg(long, env = "CUPOLA_JWKS_REFRESH_SECS", default_value_t = 3600)]
    pub jwks_refresh_secs: u64,

    /// Least seconds between two fetches of `--jwks` caused by tokens naming a key
    /// (`kid`) the gateway does not have: a flood of such tokens costs the issuer one
    /// fetch per interval.
    #[arg(long, env = "CUPOLA_JWKS_MIN_REFETCH_SECS", default_value_t = 60)]
    pub jwks_min_refetch_secs: u64,

    /// The audience (`aud`) a token must name. With a SMART issuer, the FHIR base URL
    /// (`https://cup.example.it/fhir`): the `aud` a SMART client asks its token for. A
    /// trailing `/` on either side does not matter.
    #[arg(long, env = "CUPOLA_AUDIENCE", default_value = "cupola")]
    pub audience: String,

    /// How the issuer's claims give cupola's role, organisation and channel: a JSON
    /// file (see `mappings/auth/claims-keycloak.json`), checked at start-up. Only with
    /// `--issuer`. Without it, tokens carry cupola's `role`, `org` and `channel` claims.
    #[arg(long, env = "CUPOLA_CLAIMS_MAP")]
    pub claims_map: Option<std::path::PathBuf>,

    /// The development ES256 key (JSON), created on first start when missing. Used
    /// only when no `--issuer` is set; never commit it.
    #[arg(long, env = "CUPOLA_DEV_KEY_FILE", default_value = "cupola-dev-key.json")]
    pub dev_key_file: std::path::PathBuf,
}

/// Request limits, CORS and TLS.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Longest time a request may take, in milliseconds (then 503 with an
    /// OperationOutcome).
    #[arg(long, env = "CUPOLA_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Requests per second allowed to one client (its token's subject), averaged;
    /// beyond it 429 with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "CUPOLA_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,

    /// Requests one client may send in a burst above the rate.
    #[arg(long, env = "CUPOLA_RATE_BURST", default_value_t = 2000)]
    pub rate_burst: u32,

    /// Origins allowed by CORS, comma-separated (`*` for any). Empty: CORS closed.
    #[arg(long, env = "CUPOLA_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// PEM certificate chain: serve HTTPS (with `--tls-key`) instead of HTTP.
    #[arg(long, env = "CUPOLA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "CUPOLA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_timeout_ms: 30_000,
            rate_limit: 1000,
            rate_burst: 2000,
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl AuthConfig {
    /// Development-key settings with the key in `dev_key_file`.
    pub fn dev(dev_key_file: impl Into<std::path::PathBuf>) -> AuthConfig {
        AuthConfig {
            issuer: None,
            jwks: None,
            jwks_refresh_secs: 3600,
            jwks_min_refetch_secs: 60,
            audience: "cupola".into(),
            claims_map: None,
            dev_key_file: dev_key_file.into(),
        }
    }
}

/// The operators' console signing in with the issuer: OAuth 2.0 authorization code
/// with PKCE (SMART App Launch, standalone). All three or none, and only with
/// `--issuer`; they are published in `GET /fhir/.well-known/smart-configuration`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsoleConfig {
    /// The console's client id at the issuer (a public client: no secret).
    #[arg(long, env = "CUPOLA_OAUTH_CLIENT_ID")]
    pub oauth_client_id: Option<String>,

    /// The issuer's authorization endpoint (`https://…/protocol/openid-connect/auth`).
    #[arg(long, env = "CUPOLA_AUTHORIZE_URL")]
    pub authorize_url: Option<String>,

    /// The issuer's token endpoint (`https://…/protocol/openid-connect/token`).
    #[arg(long, env = "CUPOLA_TOKEN_URL")]
    pub token_url: Option<String>,
}

/// The issuer's OAuth endpoints and the console's client, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    pub client_id: String,
    pub authorize_url: String,
    pub token_url: String,
}

impl ConsoleConfig {
    /// The endpoints, when all three settings are given (see [`ConsoleConfig::check`]).
    pub fn endpoints(&self) -> Option<OAuthEndpoints> {
        match (&self.oauth_client_id, &self.authorize_url, &self.token_url) {
            (Some(c), Some(a), Some(t)) => {
                Some(OAuthEndpoints { client_id: c.clone(), authorize_url: a.clone(), token_url: t.clone() })
            }
            _ => None,
        }
    }

    /// All three or none, only with an issuer, and the URLs absolute http(s) URLs.
    pub fn check(&self, issuer: Option<&str>) -> Result<(), String> {
        let given = [
            ("--oauth-client-id (CUPOLA_OAUTH_CLIENT_ID)", &self.oauth_client_id),
            ("--authorize-url (CUPOLA_AUTHORIZE_URL)", &self.authorize_url),
            ("--token-url (CUPOLA_TOKEN_URL)", &self.token_url),
        ];
        let missing: Vec<&str> = given.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        if missing.len() == given.len() {
            return Ok(());
        }
        if !missing.is_empty() {
            return Err(format!(
                "the console's sign-in needs --oauth-client-id, --authorize-url and --token-url together; \
                 also set {}, or unset the others",
                missing.join(" and ")
            ));
        }
        if issuer.is_none() {
            return Err("--oauth-client-id, --authorize-url and --token-url are the issuer's: they need --issuer \
                 (CUPOLA_ISSUER) and --jwks; without an issuer, sign in with `cupola token`"
                .into());
        }
        if self.oauth_client_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(
                "--oauth-client-id (CUPOLA_OAUTH_CLIENT_ID) is empty; set the console's client id at the issuer".into(),
            );
        }
        check_url("--authorize-url (CUPOLA_AUTHORIZE_URL)", self.authorize_url.as_deref())?;
        check_url("--token-url (CUPOLA_TOKEN_URL)", self.token_url.as_deref())
    }
}

/// An absolute `https://` (or `http://`) URL.
fn check_url(flag: &str, value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.has_host() => Ok(()),
        _ => Err(format!("{flag} is `{value}`: set it to the issuer's endpoint, an absolute https:// URL")),
    }
}

impl Config {
    /// The FHIR base URL as clients see it.
    pub fn fhir_base(&self, bound: &std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{bound}/fhir"),
        }
    }

    /// The checks that need several settings at once; the gateway does not start
    /// without them, and the message says what to set.
    pub fn check(&self) -> anyhow::Result<()> {
        self.console.check(self.auth.issuer.as_deref()).map_err(anyhow::Error::msg)
    }

    /// Settings for tests and embedding: everything at its default but the database.
    pub fn for_database(database_url: &str) -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            metrics_listen: None,
            database_url: database_url.into(),
            canonical_base: "http://example.org/cupola".into(),
            public_url: None,
            max_body_bytes: 10 * 1024 * 1024,
            db_max_connections: 5,
            db_busy_timeout_secs: 5,
            db_upkeep_secs: 60,
            demo: false,
            mappings_dir: "mappings".into(),
            auth: AuthConfig::dev("cupola-dev-key.json"),
            console: ConsoleConfig::default(),
            booking: BookingConfig::default(),
            limits: LimitsConfig::default(),
            notify: crate::notify::NotifyConfig::default(),
            audit_flush_ms: 100,
            amqp_url: None,
            amqp_exchange: None,
            daily_lists_at: None,
            outbox_body_retention_hours: 2160,
            outbox_retention_sweep_secs: 60,
        }
    }
}

/// Booking settings (`$find`, `$hold`, `$book`).
#[derive(Debug, Clone, clap::Args)]
pub struct BookingConfig {
    /// Seconds an operator's hold (`$hold`, an Appointment `pending`) keeps its slot;
    /// then the hold is cancelled and the slot frees itself.
    #[arg(long, env = "CUPOLA_HOLD_SECONDS", default_value_t = 300)]
    pub hold_seconds: u64,
    /// Seconds a `$find` proposal can be held or booked by reference.
    #[arg(long, env = "CUPOLA_PROPOSAL_SECONDS", default_value_t = 900)]
    pub proposal_seconds: u64,
    /// Seconds a slot offered to the first in a waiting list (an Appointment
    /// `waitlist` turned `pending`) stays theirs to book; then it goes to the next.
    #[arg(long, env = "CUPOLA_WAITLIST_HOLD_SECONDS", default_value_t = 900)]
    pub waitlist_hold_seconds: u64,
    /// How often, in milliseconds, expired holds and proposals are swept.
    #[arg(long, env = "CUPOLA_SWEEP_MS", default_value_t = 1000)]
    pub sweep_ms: u64,
    /// `$book` requests that arrive together are booked in one transaction (each
    /// booking still all or nothing) and committed together: how many such groups
    /// run at once on PostgreSQL (SQLite's one writer groups every write already); 0
    /// books each request in a transaction of its own.
    #[arg(long, env = "CUPOLA_BOOK_LANES", default_value_t = 0)]
    pub book_lanes: usize,

    /// Which local references must name a resource that exists: `workflow` (the
    /// default) those of the booking workflow's resources (a booked Appointment, a
    /// prescription, the ticket's ChargeItems and Invoices, PaymentNotices, exemption
    /// Coverages); `strict` every local reference of every resource.
    #[arg(long, env = "CUPOLA_REFERENTIAL_INTEGRITY", value_enum, default_value_t = Integrity::Workflow)]
    pub referential_integrity: Integrity,
}

/// `--referential-integrity`: see [`BookingConfig::referential_integrity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Integrity {
    /// The booking workflow's references; FHIR's open world for the rest.
    #[default]
    Workflow,
    /// Every local reference to a served type.
    Strict,
}

impl Default for BookingConfig {
    fn default() -> Self {
        BookingConfig {
            hold_seconds: 300,
            proposal_seconds: 900,
            waitlist_hold_seconds: 900,
            sweep_ms: 1000,
            book_lanes: 0,
            referential_integrity: Integrity::Workflow,
        }
    }
}
