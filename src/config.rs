//! Every setting of `cupola serve`: its flag, its `CUPOLA_*` variable and its default,
//! in one table.

use clap::Args;

/// Settings of the gateway (`cupola serve`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the HTTP API listens on.
    #[arg(long, env = "CUPOLA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

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

    /// Seconds a request waits for a database connection or SQLite's write lock before
    /// answering 503 with `Retry-After`.
    #[arg(long, env = "CUPOLA_DB_BUSY_TIMEOUT_SECS", default_value_t = 5)]
    pub db_busy_timeout_secs: u64,

    /// Load the demo data set into an empty store at start-up.
    #[arg(long, env = "CUPOLA_DEMO")]
    pub demo: bool,
}

impl Config {
    /// The FHIR base URL as clients see it.
    pub fn fhir_base(&self, bound: &std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{bound}/fhir"),
        }
    }

    /// Settings for tests and embedding: everything at its default but the database.
    pub fn for_database(database_url: &str) -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            canonical_base: "http://example.org/cupola".into(),
            public_url: None,
            max_body_bytes: 10 * 1024 * 1024,
            db_max_connections: 5,
            db_busy_timeout_secs: 5,
            demo: false,
        }
    }
}
