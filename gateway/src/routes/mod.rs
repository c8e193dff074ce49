//! REST routes, one module per service.

pub mod artifacts;
pub mod logged_models;
pub mod misc;
pub mod registry;
pub mod tracking;

/// A JSON body already serialized (search pages are written straight from
/// the protos, without a `serde_json::Value` tree).
pub(crate) fn json_text(body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
