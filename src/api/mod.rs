//! The HTTP API: axum routers for the FHIR interactions, search, history,
//! transactions and health. Handlers are thin: they parse, call the store, answer.

mod context;
mod crud;
mod entries;
mod health;
mod history;
mod search;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use context::{Ctx, Reply};

use crate::fhir::check::Checker;
use crate::store::Store;
use crate::Config;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub checker: Arc<Checker>,
    pub config: Arc<Config>,
    /// The FHIR base URL clients use (`http://host:port/fhir`).
    pub base: Arc<str>,
}

impl AppState {
    /// `base/Type/id`
    pub fn url(&self, res_type: &str, id: &str) -> String {
        format!("{}/{res_type}/{id}", self.base)
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let fhir = Router::new()
        .route("/", post(transaction::bundle))
        .route("/metadata", get(health::metadata))
        .route("/_history", get(history::system))
        .route(
            "/{res_type}",
            get(search::search_get).post(crud::create).put(crud::conditional_update).delete(crud::conditional_delete),
        )
        .route("/{res_type}/_search", post(search::search_post))
        .route("/{res_type}/_history", get(history::type_history))
        .route("/{res_type}/{id}", get(crud::read).put(crud::update).delete(crud::delete))
        .route("/{res_type}/{id}/_history", get(history::instance))
        .route("/{res_type}/{id}/_history/{vid}", get(crud::vread));
    Router::new()
        .route("/fhir/", post(transaction::bundle))
        .nest("/fhir", fhir)
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(health::unknown_path)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(health::panic_response))
        .with_state(state)
}

/// Builds the state for a bound listener.
pub async fn build_state(config: Config, bound: SocketAddr) -> anyhow::Result<AppState> {
    let registry = Arc::new(crate::store::Registry::r4());
    let store = Store::connect(
        &config.database_url,
        config.db_max_connections,
        std::time::Duration::from_secs(config.db_busy_timeout_secs),
        registry,
    )
    .await?;
    let base: Arc<str> = config.fhir_base(&bound).into();
    let checker = Checker::shared();
    if config.demo {
        crate::demo::load(&store, &checker).await?;
    }
    Ok(AppState { store, checker, config: Arc::new(config), base })
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(base = %state.base, "cupola serving FHIR R4");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
