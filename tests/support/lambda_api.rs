//! A local Lambda Runtime API: the interface (version 2018-06-01) that Lambda serves a custom
//! runtime such as `lambda_runtime`, so that tests run the real function binaries as Lambda
//! would. The function polls `GET /2018-06-01/runtime/invocation/next`; a test queues an event
//! with [`RuntimeApi::invoke`] and gets back what the function posted to
//! `…/invocation/{id}/response` or `…/invocation/{id}/error`. A function that fails its
//! initialisation may post `…/init/error`: those are kept in [`RuntimeApi::init_errors`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:cdc-test";

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST …/response`: the handler's JSON answer.
    Response(serde_json::Value),
    /// `POST …/error` (or `…/init/error`): `Lambda-Runtime-Function-Error-Type` and the body.
    Error { error_type: Option<String>, body: serde_json::Value },
}

impl Outcome {
    pub fn response(&self) -> &serde_json::Value {
        match self {
            Outcome::Response(value) => value,
            Outcome::Error { .. } => panic!("expected a response, got {self:?}"),
        }
    }
}

struct Invocation {
    request_id: String,
    deadline_ms: u128,
    body: Bytes,
}

#[derive(Default)]
struct Answers {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_errors: Vec<Outcome>,
    /// How many times `…/next` was asked for.
    polls: usize,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    answers: Mutex<Answers>,
}

pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    sender: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()
}

impl RuntimeApi {
    /// Serve on a free port of 127.0.0.1, in the current runtime.
    pub async fn start() -> RuntimeApi {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared =
            Arc::new(Shared { queue: tokio::sync::Mutex::new(receiver), answers: Mutex::new(Answers::default()) });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let address = listener.local_addr().expect("bound").to_string();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("runtime API serves");
        });
        RuntimeApi { address, sender, shared, server }
    }

    /// Queue `body` as the next event, with a deadline `timeout` from now, and wait (up to
    /// `timeout` plus 30 s) for the function's answer.
    pub async fn invoke(&self, body: impl Into<Bytes>, timeout: Duration) -> Outcome {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (answer, answered) = oneshot::channel();
        self.shared.answers.lock().unwrap().waiting.insert(request_id.clone(), answer);
        let deadline_ms = epoch_ms() + timeout.as_millis();
        self.sender
            .send(Invocation { request_id: request_id.clone(), deadline_ms, body: body.into() })
            .expect("served");
        match tokio::time::timeout(timeout + Duration::from_secs(30), answered).await {
            Ok(Ok(outcome)) => outcome,
            _ => panic!("the function did not answer invocation {request_id} in time"),
        }
    }

    pub fn init_errors(&self) -> Vec<Outcome> {
        self.shared.answers.lock().unwrap().init_errors.clone()
    }

    /// How many times the function asked for its next event.
    pub fn polls(&self) -> usize {
        self.shared.answers.lock().unwrap().polls
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.answers.lock().unwrap().polls += 1;
    // One poller at a time, as in Lambda; the lock is held while it waits.
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", invocation.deadline_ms.to_string()),
        ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_string()),
        (
            "Lambda-Runtime-Trace-Id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        ),
        ("Content-Type", "application/json".into()),
    ];
    (StatusCode::OK, headers, invocation.body).into_response()
}

fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()))
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.answers.lock().unwrap().waiting.remove(id) {
        Some(waiting) => {
            let _ = waiting.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&shared, &id, Outcome::Response(json(&body)))
}

fn error_outcome(headers: &HeaderMap, body: &Bytes) -> Outcome {
    let error_type =
        headers.get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok()).map(str::to_string);
    Outcome::Error { error_type, body: json(body) }
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, error_outcome(&headers, &body))
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.answers.lock().unwrap().init_errors.push(error_outcome(&headers, &body));
    StatusCode::ACCEPTED
}
