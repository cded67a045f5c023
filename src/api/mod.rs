//! The HTTP API: axum routers for the FHIR interactions, search, history,
//! transactions and health. Handlers are thin: they parse, call the store, answer.

mod agenda;
mod billing;
mod booking;
mod context;
mod crud;
mod dead_letter;
mod definitions;
mod entries;
mod guard;
mod health;
mod history;
mod limit;
mod messaging;
mod metrics;
mod outbox;
mod params;
mod search;
mod subscriptions;
mod terminology;
mod tls;
mod transaction;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use context::{Ctx, Reply, Touched};

use crate::audit::Auditor;
use crate::auth::Authenticator;
use crate::fhir::check::Checker;
use crate::mappings::Mappings;
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
    pub auth: Arc<Authenticator>,
    pub auditor: Auditor,
    pub limiter: Option<Arc<guard::Limiter>>,
    /// `mappings/`, checked at start-up.
    pub mappings: Arc<Mappings>,
    /// This gateway's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The websockets bound to subscriptions in this process.
    pub sockets: crate::notify::Sockets,
}

impl AppState {
    /// `base/Type/id`
    pub fn url(&self, res_type: &str, id: &str) -> String {
        format!("{}/{res_type}/{id}", self.base)
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let protected = Router::new()
        .route("/", post(transaction::bundle))
        .route("/_history", get(history::system))
        .route("/$waiting-times", get(booking::waiting_times).post(booking::waiting_times))
        .route(
            "/{res_type}",
            get(search::search_get).post(crud::create).put(crud::conditional_update).delete(crud::conditional_delete),
        )
        .route("/ConceptMap/$translate", get(terminology::translate_get).post(terminology::translate_post))
        .route(
            "/ConceptMap/{id}/$translate",
            get(terminology::translate_instance_get).post(terminology::translate_instance_post),
        )
        .route("/OperationDefinition", get(definitions::search))
        .route("/OperationDefinition/{id}", get(definitions::read))
        .route("/$settlement", get(billing::settlement).post(billing::settlement))
        .route("/$recovery", post(billing::recovery))
        .route("/$outbox", get(outbox::outbox).post(outbox::outbox))
        .route("/$outbox-summary", get(outbox::outbox_summary).post(outbox::outbox_summary))
        .route("/$resend", post(outbox::resend))
        .route("/$dead-letter", get(dead_letter::dead_letter).post(dead_letter::dead_letter))
        .route("/$dead-letter-replay", post(dead_letter::replay))
        .route("/$process-message", post(messaging::process_message))
        .route("/$dispatch-lists", post(billing::dispatch_lists))
        .route("/ChargeItemDefinition/$apply", get(billing::apply_type).post(billing::apply_type))
        .route("/ChargeItemDefinition/{id}/$apply", get(billing::apply_instance).post(billing::apply_instance))
        .route("/Patient/{id}/$outstanding", get(billing::outstanding).post(billing::outstanding))
        .route("/Appointment/$find", get(booking::find).post(booking::find))
        .route("/Appointment/$hold", post(booking::hold))
        .route("/Appointment/$book", post(booking::book))
        .route("/Appointment/{id}/$cancel", post(booking::cancel))
        .route("/Schedule/{id}/$generate-slots", post(agenda::generate))
        .route("/Schedule/{id}/$close", post(agenda::close))
        .route("/Schedule/{id}/$reopen", post(agenda::reopen))
        .route("/Subscription/{id}/$status", get(subscriptions::status).post(subscriptions::status))
        .route("/Subscription/{id}/$events", get(subscriptions::events).post(subscriptions::events))
        .route(
            "/Subscription/{id}/$get-ws-binding-token",
            get(subscriptions::binding_token).post(subscriptions::binding_token),
        )
        .route("/{res_type}/_search", post(search::search_post))
        .route("/{res_type}/_history", get(history::type_history))
        .route("/{res_type}/{id}", get(crud::read).put(crud::update).delete(crud::delete))
        .route("/{res_type}/{id}/_history", get(history::instance))
        .route("/{res_type}/{id}/_history/{vid}", get(crud::vread))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard));
    let counted = middleware::from_fn_with_state(state.clone(), metrics::count);
    let fhir = Router::new()
        .route("/metadata", get(health::metadata))
        .route("/.well-known/smart-configuration", get(health::smart_configuration))
        // No bearer token: the binding token the socket sends authenticates it.
        .route(crate::notify::WS_PATH, get(websocket::upgrade))
        .merge(protected)
        .layer(counted.clone());
    let base_post = Router::new()
        .route("/fhir/", post(transaction::bundle))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(counted);
    let scrape = Router::new()
        .route("/metrics", get(metrics::scrape_as_admin))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard));
    let cors = cors_layer(&state.config.limits.cors_origins);
    Router::new()
        .merge(base_post)
        .merge(scrape)
        .nest("/fhir", fhir)
        // The operators' console: pages that need no token, outside the guard.
        .merge(crate::console::router())
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(health::unknown_path)
        .method_not_allowed_fallback(health::method_not_allowed)
        // Our own limit (see `limit`): axum's would answer before the body is read.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(limit, limit::oversize))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(health::panic_response))
        .layer(cors)
        .with_state(state)
}

/// CORS for the configured origins; closed (no CORS headers) when there are none.
fn cors_layer(origins: &[String]) -> tower::util::Either<CorsLayer, tower::layer::util::Identity> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    let origins: Vec<&String> = origins.iter().filter(|o| !o.trim().is_empty()).collect();
    if origins.is_empty() {
        return tower::util::Either::Right(tower::layer::util::Identity::new());
    }
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            HeaderName::from_static("if-none-exist"),
            HeaderName::from_static("prefer"),
        ])
        .expose_headers([header::ETAG, header::LOCATION, header::LAST_MODIFIED, header::CONTENT_LOCATION])
        .max_age(std::time::Duration::from_secs(600));
    tower::util::Either::Left(layer)
}

/// Builds the state for a bound listener.
pub async fn build_state(config: Config, bound: SocketAddr) -> anyhow::Result<AppState> {
    // Settings that contradict each other stop the start before anything is touched.
    config.check()?;
    let registry = Arc::new(crate::fhir::names::registry(&config.canonical_base));
    let checker = Checker::shared();
    let mappings = Arc::new(
        Mappings::load(&config.mappings_dir, &config.canonical_base, &checker)
            .map_err(|e| anyhow::anyhow!("mappings: {e}"))?,
    );
    let base: Arc<str> = config.fhir_base(&bound).into();
    let settings = domain_settings(&config, &mappings);
    let metrics = Arc::new(crate::metrics::Metrics::new(crate::auth::CHANNELS)?);
    let store = Store::connect(
        &config.database_url,
        config.db_max_connections,
        std::time::Duration::from_secs(config.db_busy_timeout_secs),
        registry.clone(),
    )
    .await?
    .observe_write_waits(metrics.write_wait_observer());
    let store = with_rules(store, &config, settings, &base);
    let auth = Arc::new(Authenticator::from_config(&config.auth).await?);
    if config.demo {
        crate::demo::load(&store, &config.canonical_base).await?;
        crate::demo::print_tokens(&config.auth)?;
    }
    // After the demo, which loads only into an empty store.
    serve_definitions(&store, &mappings, &config.canonical_base).await?;
    let auditor = Auditor::start(
        &config.database_url,
        registry,
        config.canonical_base.clone(),
        std::time::Duration::from_millis(config.audit_flush_ms.max(1)),
    )
    .await?;
    let limiter = limiter(&config);
    let sockets = crate::notify::Sockets::default();
    Ok(AppState { store, checker, config: Arc::new(config), base, auth, auditor, limiter, mappings, metrics, sockets })
}

/// The domain's settings (booking, billing, messaging) from the configuration and
/// the mappings; the AMQP exchange of the configuration, when given, over theirs.
/// `store` with the domain's rules on its writes (bookings take their places, tickets
/// and messages follow), as every writer of the store must have it.
fn with_rules(store: Store, config: &Config, settings: crate::booking::Settings, base: &str) -> Store {
    crate::booking::hooks::configured(store, crate::booking::Settings { public_base: base.to_string(), ..settings })
        .with_more_hooks(crate::notify::hooks(&config.notify, &config.canonical_base))
}

/// The store of `config` with the domain's rules, for the commands that write it
/// without serving (`cupola demo load`): the region's mappings are loaded and checked
/// as `serve` does.
pub async fn store_with_rules(config: &Config) -> anyhow::Result<Store> {
    let registry = Arc::new(crate::fhir::names::registry(&config.canonical_base));
    let mappings = Mappings::load(&config.mappings_dir, &config.canonical_base, &Checker::shared())
        .map_err(|e| anyhow::anyhow!("mappings: {e}"))?;
    let settings = domain_settings(config, &mappings);
    let timeout = std::time::Duration::from_secs(config.db_busy_timeout_secs);
    let store = Store::connect(&config.database_url, config.db_max_connections, timeout, registry).await?;
    Ok(with_rules(store, config, settings, &config.canonical_base))
}

fn domain_settings(config: &Config, mappings: &Mappings) -> crate::booking::Settings {
    crate::booking::Settings::from_config(
        &config.canonical_base,
        &config.booking,
        Arc::new(mappings.booking.clone()),
        Arc::new(mappings.billing.clone()),
        Arc::new(crate::messaging::Settings {
            routing: crate::mappings::Routing {
                exchange: config.amqp_exchange.clone().unwrap_or_else(|| mappings.routing.exchange.clone()),
                ..mappings.routing.clone()
            },
            providers: mappings.providers.clone(),
        }),
    )
}

/// The rate limiter of the configured limits (none without), tidied every minute
/// for as long as it is in use.
fn limiter(config: &Config) -> Option<Arc<guard::Limiter>> {
    let limiter = guard::Limiter::new(&config.limits).map(Arc::new);
    if let Some(l) = &limiter {
        let l = Arc::downgrade(l);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                match l.upgrade() {
                    Some(l) => l.tidy(),
                    None => return,
                }
            }
        });
    }
    limiter
}

/// Stores the ConceptMaps of `mappings/`, cupola's own SearchParameters and booking
/// CodeSystems as resources (only what changed).
async fn serve_definitions(store: &Store, mappings: &Mappings, base: &str) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    let gateway = crate::access::Access::gateway();
    let params = crate::fhir::names::search_parameters(base);
    let code_systems = crate::booking::code_systems(base);
    let topics: Vec<serde_json::Value> =
        crate::notify::topics::TOPICS.iter().map(|t| crate::notify::topics::basic(base, t)).collect();
    let served = mappings.resources().into_iter().chain(params.iter()).chain(code_systems.iter());
    for m in served.chain(topics.iter()) {
        let t = m.get("resourceType").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        let id = m.get("id").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        store.upsert_in(&mut tx, &gateway, &t, &id, m.clone()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Serves until `shutdown` resolves, then finishes the requests in flight. The
/// background work (sweep, relay, daily lists) is the caller's: `crate::background`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(base = %state.base, "cupola serving FHIR R4");
    let auditor = state.auditor.clone();
    let tls = match (&state.config.limits.tls_cert, &state.config.limits.tls_key) {
        (Some(cert), Some(key)) => Some(tls::config(cert, key).await?),
        _ => None,
    };
    // Bound before serving: a bad --metrics-listen stops the start.
    let scraped = match &state.config.metrics_listen {
        Some(addr) => Some(tokio::spawn(metrics::serve(metrics::bind(addr).await?, state.clone()))),
        None => None,
    };
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        Some(tls) => tls::serve(listener, app, tls, shutdown).await,
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(anyhow::Error::from),
    };
    if let Some(task) = scraped {
        task.abort();
    }
    served?;
    // Every request has answered: write what they left in the audit queue.
    auditor.flush().await;
    Ok(())
}
