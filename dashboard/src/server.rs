//! The HTTP server: the page and its assets, `GET /api/query` and `GET /api/health` over one
//! warehouse, a sampler task that feeds the health history, graceful shutdown. Handlers are
//! thin: parse ([`crate::query`]), compute ([`crate::compute`], [`crate::health`]), answer.
use crate::access::{Access, Decision, TOKEN_COOKIE};
use crate::assets;
use crate::compute::{self, QueryResult};
use crate::error::DashboardError;
use crate::health::{HealthReport, History, Sample};
use crate::metrics as m;
use crate::query::{self, Anchors, Limits, ParamError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use inlet_seams::LeasedWarehouse;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Settings of the dashboard.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where to listen (port 0: any free port; see [`Dashboard::local_addr`]).
    pub listen: SocketAddr,
    /// How often the health sampler reads the totals and the leases.
    pub sample_interval: Duration,
    /// Samples kept for the events/s history.
    pub history: usize,
    /// Bounds on queries.
    pub limits: Limits,
    /// Queries computed at once; more wait their turn.
    pub max_concurrent_queries: usize,
    /// Who may see the page and the API.
    pub access: Access,
}

impl DashboardConfig {
    /// Defaults: a sample every 2 s, 10 minutes of history, 4 queries at once.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            sample_interval: Duration::from_secs(2),
            history: 300,
            limits: Limits::default(),
            max_concurrent_queries: 4,
            access: Access::Open,
        }
    }
}

struct AppState {
    warehouse: Arc<dyn LeasedWarehouse>,
    limits: Limits,
    queries: Semaphore,
    history: Mutex<History>,
}

/// A bound dashboard, ready to [`Dashboard::run`].
pub struct Dashboard {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    sample_interval: Duration,
    access: Access,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Wall-clock ms since the epoch: the one place the dashboard reads the clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Dashboard {
    /// Opens the listening socket.
    pub async fn bind(warehouse: Arc<dyn LeasedWarehouse>, config: DashboardConfig) -> Result<Self, DashboardError> {
        let bind_error = |source| DashboardError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            addr,
            sample_interval: config.sample_interval,
            access: config.access,
            state: Arc::new(AppState {
                warehouse,
                limits: config.limits,
                queries: Semaphore::new(config.max_concurrent_queries.max(1)),
                history: Mutex::new(History::new(config.history)),
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`, then lets requests in flight finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DashboardError> {
        let app = router(Arc::clone(&self.state)).layer(axum::middleware::from_fn_with_state(
            Arc::new(self.access.clone()),
            check_access,
        ));
        tracing::info!(addr = %self.addr, "dashboard listening");
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let ((), served) = tokio::join!(sample(self.state, self.sample_interval, shutdown), serve);
        served.map_err(DashboardError::Serve)
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", "no-cache", assets::INDEX_HTML) }),
        )
        .route(
            "/assets/uPlot.iife.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", "max-age=86400", assets::UPLOT_JS) }),
        )
        .route(
            "/assets/uPlot.min.css",
            get(|| async { asset("text/css; charset=utf-8", "max-age=86400", assets::UPLOT_CSS) }),
        )
        .route("/api/query", get(query_handler))
        .route("/api/health", get(health_handler))
        .fallback(|| async { ApiError::Status(StatusCode::NOT_FOUND, ErrorBody::new("no such page or API", None)) })
        .with_state(state)
}

/// Lets a request through if the access rule allows it; 401 otherwise.
async fn check_access(
    State(access): State<Arc<Access>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match access.decide(request.headers(), request.uri().query()) {
        Decision::Allow => next.run(request).await,
        Decision::AllowAndRemember(token) => {
            let mut response = next.run(request).await;
            let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(v) = http::HeaderValue::from_str(&cookie) {
                response.headers_mut().append(http::header::SET_COOKIE, v);
            }
            response
        }
        Decision::Deny => {
            let mut response = ApiError::Status(
                StatusCode::UNAUTHORIZED,
                ErrorBody::new("this dashboard needs credentials", None),
            )
            .into_response();
            if matches!(*access, Access::Basic { .. }) {
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Basic realm=\"inlet dashboard\""),
                );
            }
            response
        }
    }
}

fn asset(content_type: &'static str, cache: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/query?metric=plays&group=title&from=...&to=...&resolution=minute&top=10`.
async fn query_handler(
    State(state): State<Arc<AppState>>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let outcome = answer_query(&state, params).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(ApiError::BadRequest(_)) => "bad_request",
        Err(_) => "unavailable",
    };
    metrics::counter!(m::QUERIES_TOTAL, "outcome" => label).increment(1);
    outcome.map(fresh)
}

async fn answer_query(
    state: &AppState,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<QueryResult, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::BadRequest(ParamError {
            error: e.body_text(),
            field: "query".into(),
        })
    })?;
    let leases = state
        .warehouse
        .list()
        .await
        .map_err(|e| ApiError::unavailable("reading the leases", &e))?;
    let anchors = Anchors {
        now_ms: now_ms(),
        latest_event_ms: leases.iter().filter_map(|l| l.watermark_ms).max(),
    };
    let query = query::parse(&params, anchors, state.limits).map_err(ApiError::BadRequest)?;
    // The semaphore is never closed.
    let _permit = state.queries.acquire().await;
    let started = Instant::now();
    let result = compute::run(state.warehouse.as_ref(), &query)
        .await
        .map_err(|e| ApiError::unavailable("reading the rollups", &e))?;
    metrics::histogram!(m::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
    tracing::debug!(?query, ms = started.elapsed().as_millis() as u64, "query answered");
    Ok(result)
}

/// `GET /api/health`.
async fn health_handler(State(state): State<Arc<AppState>>) -> Response {
    let report: HealthReport = {
        let history = state.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.report(now_ms())
    };
    fresh(report)
}

/// A JSON answer that must not be cached.
fn fresh(body: impl Serialize) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// Samples the warehouse every `interval` until `shutdown`.
async fn sample(state: Arc<AppState>, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let at_ms = now_ms();
        let taken = tokio::select! {
            () = shutdown.cancelled() => return,
            taken = take_sample(state.warehouse.as_ref(), at_ms) => taken,
        };
        let mut history = state.history.lock().unwrap_or_else(PoisonError::into_inner);
        match taken {
            Ok(s) => {
                metrics::counter!(m::SAMPLES_TOTAL, "outcome" => "ok").increment(1);
                history.record(s);
            }
            Err(e) => {
                metrics::counter!(m::SAMPLES_TOTAL, "outcome" => "error").increment(1);
                tracing::warn!(error = %e, "health sample failed");
                history.record_error(at_ms, e);
            }
        }
    }
}

async fn take_sample(warehouse: &dyn LeasedWarehouse, at_ms: i64) -> Result<Sample, String> {
    let totals = warehouse.totals().await.map_err(|e| chain("reading the totals", &e))?;
    let leases = warehouse.list().await.map_err(|e| chain("reading the leases", &e))?;
    let failures = warehouse
        .failures()
        .await
        .map_err(|e| chain("reading the shard failures", &e))?;
    Ok(Sample {
        at_ms,
        totals,
        leases,
        failures,
    })
}

/// `what: error: source: source...`, for people reading the page.
fn chain(what: &str, e: &dyn std::error::Error) -> String {
    format!("{what}: {}", inlet_seams::error_chain(e))
}

/// A JSON error body.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ErrorBody {
    fn new(error: impl Into<String>, field: Option<String>) -> Self {
        Self {
            error: error.into(),
            field,
        }
    }
}

#[derive(Debug)]
enum ApiError {
    /// 400 with the parameter at fault.
    BadRequest(ParamError),
    /// Any other status.
    Status(StatusCode, ErrorBody),
}

impl ApiError {
    /// The warehouse or lease store failed: 503, with the error chain.
    fn unavailable(what: &str, e: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %chain(what, e), "query failed");
        ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, ErrorBody::new(chain(what, e), None))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::BadRequest(p) => (StatusCode::BAD_REQUEST, ErrorBody::new(p.error, Some(p.field))),
            ApiError::Status(status, body) => (status, body),
        };
        (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
    }
}
