//! Quiver's HTTP gateway: MLflow's REST API (`/api/2.0/mlflow/...` and the
//! UI's `/ajax-api/2.0/mlflow/...`) over the services' API traits, with the
//! namespace taken from a `/ns/{namespace}/` prefix or `X-MLFLOW-WORKSPACE`.

pub mod dto;
pub mod error;
pub mod params;
pub mod routes;
pub mod site;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use quiver_artifacts::ArtifactsApi;
use quiver_common::{Namespace, RequestContext};
use quiver_registry::RegistryApi;
use quiver_tracking::TrackingApi;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::error::GatewayError;
use crate::params::BodyLimit;
use crate::site::SitePolicy;

/// MLflow's workspace header, read as the namespace when no `/ns/` prefix is given.
pub const WORKSPACE_HEADER: &str = "x-mlflow-workspace";

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The tracking service (in-process or remote).
    pub tracking: Arc<dyn TrackingApi>,
    /// The artifacts service (in-process or remote).
    pub artifacts: Arc<dyn ArtifactsApi>,
    /// The registry service (in-process or remote).
    pub registry: Arc<dyn RegistryApi>,
    /// Hand out store-presigned URLs for multipart downloads when the store
    /// can sign them (`artifacts.direct_downloads`).
    pub direct_downloads: bool,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Per-request timeout (answered with 504 DEADLINE_EXCEEDED-style JSON).
    pub request_timeout: std::time::Duration,
    /// Allowed `Host` names and cross-site origins (`gateway.allowed_hosts`,
    /// `gateway.allowed_origins`).
    pub site: Arc<SitePolicy>,
}

/// Builds the gateway: routes under `/api/2.0/mlflow` and
/// `/ajax-api/2.0/mlflow`, misc endpoints, JSON 404/405, and the namespace
/// layer that runs before routing.
pub fn app(state: AppState) -> Router {
    let mlflow = routes::tracking::routes()
        .merge(routes::artifacts::tracking_routes())
        .merge(routes::logged_models::routes())
        .merge(routes::registry::routes());
    let proxy = routes::artifacts::proxy_routes();
    let router = Router::new()
        .nest("/api/2.0/mlflow", mlflow.clone())
        .nest("/ajax-api/2.0/mlflow", mlflow)
        .nest("/api/2.0/mlflow-artifacts", proxy.clone())
        .nest("/ajax-api/2.0/mlflow-artifacts", proxy)
        .route("/get-artifact", get(routes::artifacts::get_run_artifact))
        .route(
            "/model-versions/get-artifact",
            get(routes::registry::get_version_artifact),
        )
        .route("/health", get(routes::misc::health))
        .route("/version", get(routes::misc::version))
        .route(
            "/api/3.0/mlflow/server-info",
            get(routes::misc::server_info),
        )
        .route(
            "/ajax-api/3.0/mlflow/server-info",
            get(routes::misc::server_info),
        )
        .fallback(routes::misc::not_found)
        .method_not_allowed_fallback(routes::misc::method_not_allowed)
        .with_state(state.clone());
    // `Router::layer` runs after routing, so the namespace prefix is stripped
    // by an outer router whose only job is to rewrite and forward.
    // Outermost first: trace, timeout, Host/Origin checks, CORS headers,
    // namespace prefix, routes.
    Router::new()
        .fallback_service(router)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            namespace_layer,
        ))
        .layer(cors_layer(state.site.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), site_layer))
        .layer(middleware::from_fn_with_state(state, timeout_layer))
        .layer(TraceLayer::new_for_http())
}

/// CORS headers (and preflight answers) for the allowed cross-site origins.
fn cors_layer(site: Arc<SitePolicy>) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|origin| site.origin_allowed(origin))
        }))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600))
}

/// Refuses requests naming a host this server does not answer to, and
/// cross-site state-changing requests from origins not allowed (403
/// `PERMISSION_DENIED`), before anything else runs; every answer says
/// `X-Content-Type-Options: nosniff` and `X-Frame-Options: SAMEORIGIN`.
async fn site_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Borrowed (no copy per request) unless the header is not UTF-8.
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|a| std::borrow::Cow::Borrowed(a.as_str()))
        });
    let checked = state.site.check(
        request.uri().path(),
        request.method(),
        host.as_deref(),
        request.headers().get(axum::http::header::ORIGIN),
    );
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(
                ?refusal,
                path = request.uri().path(),
                "cross-site request refused"
            );
            // The body was not read: the connection is not reused.
            let mut response = crate::error::error_response(
                quiver_common::ErrorCode::PermissionDenied,
                &refusal.message(),
                None,
            );
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    };
    // No content sniffing (an artifact is what its Content-Type says) and
    // no framing by other sites (clickjacking).
    let headers = response.headers_mut();
    headers
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    headers
        .entry(axum::http::header::X_FRAME_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("SAMEORIGIN"));
    response
}

/// Takes the namespace from `/ns/{namespace}/...` (stripping the prefix) or
/// the workspace header, defaulting to `default`.
async fn namespace_layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let (namespace, rewritten) = match path.strip_prefix("/ns/") {
        Some(rest) => {
            let (name, remainder) = match rest.find('/') {
                Some(index) => (&rest[..index], &rest[index..]),
                None => (rest, "/"),
            };
            (Some(name.to_string()), Some(remainder.to_string()))
        }
        None => {
            let header = request
                .headers()
                .get(WORKSPACE_HEADER)
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .map(str::to_string);
            (header, None)
        }
    };
    let namespace = match namespace {
        None => Namespace::default_namespace(),
        Some(name) => match Namespace::parse(&name) {
            Ok(namespace) => namespace,
            Err(error) => return GatewayError(error).into_response(),
        },
    };
    if let Some(new_path) = rewritten {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{new_path}?{query}"),
            None => new_path,
        };
        match Uri::builder().path_and_query(path_and_query).build() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return GatewayError::invalid("Invalid request path.").into_response(),
        }
    }
    request
        .extensions_mut()
        .insert(RequestContext::new(namespace));
    request
        .extensions_mut()
        .insert(BodyLimit(state.max_body_bytes));
    next.run(request).await
}

/// Bounds every request by the configured timeout.
async fn timeout_layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::error::error_response(
            quiver_common::ErrorCode::DeadlineExceeded,
            "The request did not complete within the server's time limit.",
            None,
        ),
    }
}

/// Serves the gateway on `listener` (TCP_NODELAY on) until `shutdown`
/// resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "failed to set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
