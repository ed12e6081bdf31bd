//! HTTP: the axum router, AWS JSON 1.1 dispatch on `X-Amz-Target`, fault injection per call,
//! request logging and the control endpoints (`/__health`, `/__faults`).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::App;
use crate::faults::{CallFault, FaultSpec};
use crate::ops::{self, Operation};
use crate::wire::{ApiError, ErrorCode};

const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// 40 statements of 100 KB each, JSON-escaped, fit comfortably.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/__health", get(health))
        .route("/__faults", get(show_faults).post(set_faults))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(add_request_id))
        .with_state(app)
}

/// Every response, including axum's own 404/405, carries a request id as AWS responses do.
async fn add_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_response(error: &ApiError) -> Response {
    respond(error.code.status(), AMZ_JSON, error.body().to_string().into_bytes())
}

async fn api(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(op) = Operation::from_target(target) else {
        tracing::debug!(target, "unknown operation");
        return error_response(&ApiError::new(
            ErrorCode::UnknownOperation,
            format!("Operation `{target}` is not supported by redshift-data-local"),
        ));
    };
    if let Some(fault) = app.faults.on_call(op.name()) {
        tracing::debug!(operation = op.name(), ?fault, "injected fault");
        let error = match fault {
            CallFault::Throttle => ApiError::new(ErrorCode::Throttling, "Rate exceeded"),
            CallFault::ServerError => {
                ApiError::new(ErrorCode::InternalServer, "Internal server error (injected by redshift-data-local)")
            }
        };
        return error_response(&error);
    }
    match ops::dispatch(&app, op, &body).await {
        Ok(reply) => {
            tracing::debug!(
                operation = op.name(),
                statement_id = reply.statement_id.as_deref().unwrap_or(""),
                sql_bytes = reply.sql_bytes,
                "ok"
            );
            respond(StatusCode::OK, AMZ_JSON, reply.body)
        }
        Err(error) => {
            tracing::debug!(operation = op.name(), error = error.code.as_str(), "failed");
            error_response(&error)
        }
    }
}

async fn health() -> Response {
    respond(StatusCode::OK, "application/json", br#"{"status":"ok"}"#.to_vec())
}

async fn show_faults(State(app): State<Arc<App>>) -> Response {
    match serde_json::to_vec(&app.faults.snapshot()) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(error) => error_response(&ApiError::new(ErrorCode::InternalServer, error.to_string())),
    }
}

/// Replaces the fault spec (body: a spec string) and resets the counters.
async fn set_faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let spec = String::from_utf8_lossy(&body);
    match spec.parse::<FaultSpec>() {
        Ok(spec) => {
            tracing::info!(faults = %spec, "fault spec replaced");
            app.faults.replace(spec);
            show_faults(State(app)).await
        }
        Err(error) => error_response(&ApiError::validation(error.to_string())),
    }
}
