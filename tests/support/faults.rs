//! Faults on the S3 path and control of the Data API emulator's faults.
//!
//! [`FaultyS3`] is an HTTP proxy in front of the S3-protocol server. For each request it may
//! answer `503 SlowDown` or `500 InternalError` without forwarding, or forward it and then
//! lose the answer (the write happened, the client sees a `500`) — the case that tests
//! whether a failed dead-letter write leaves a half-done object behind.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Default)]
pub struct S3FaultCounts {
    pub requests: AtomicU64,
    pub refused: AtomicU64,
    pub answer_lost: AtomicU64,
}

struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Probability of a fault per request.
    rate: Mutex<f64>,
    /// Forward every PUT, then answer it with an error: writes that happened but failed.
    lose_put_answers: AtomicBool,
    rng: Mutex<SmallRng>,
    counts: Arc<S3FaultCounts>,
}

/// A fault-injecting proxy in front of an S3 endpoint.
pub struct FaultyS3 {
    pub endpoint: String,
    proxy: Arc<Proxy>,
}

impl FaultyS3 {
    /// Start on a free port in the current runtime; no faults until [`FaultyS3::set_rate`].
    pub async fn start(upstream: &str, seed: u64) -> FaultyS3 {
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rate: Mutex::new(0.0),
            lose_put_answers: AtomicBool::new(false),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            counts: Arc::new(S3FaultCounts::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        let state = proxy.clone();
        let app = axum::Router::new().fallback(move |request: Request<Body>| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(state.handle(request).await) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultyS3 { endpoint: format!("http://{addr}"), proxy }
    }

    pub fn set_rate(&self, rate: f64) {
        *self.proxy.rate.lock().unwrap() = rate;
    }

    /// Lose the answer of every PUT (the object is stored, the client sees a `500`).
    pub fn lose_put_answers(&self, on: bool) {
        self.proxy.lose_put_answers.store(on, Ordering::Relaxed);
    }

    pub fn counts(&self) -> Arc<S3FaultCounts> {
        self.proxy.counts.clone()
    }
}

enum Fault {
    None,
    Refuse(StatusCode, &'static str),
    LoseAnswer,
}

fn s3_error(status: StatusCode, code: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    Response::builder().status(status).header("content-type", "application/xml").body(Body::from(body)).unwrap()
}

impl Proxy {
    fn draw(&self) -> Fault {
        let rate = *self.rate.lock().unwrap();
        let mut rng = self.rng.lock().unwrap();
        if !rng.random_bool(rate.clamp(0.0, 1.0)) {
            return Fault::None;
        }
        match rng.random_range(0..3) {
            0 => Fault::Refuse(StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
            1 => Fault::Refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            _ => Fault::LoseAnswer,
        }
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        let fault = if request.method() == hyper::Method::PUT && self.lose_put_answers.load(Ordering::Relaxed) {
            Fault::LoseAnswer
        } else {
            self.draw()
        };
        if let Fault::Refuse(status, code) = fault {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            return s3_error(status, code);
        }
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody");
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut forward = Request::builder().method(parts.method).uri(format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != hyper::header::HOST {
                forward = forward.header(name, value);
            }
        }
        let Ok(forward) = forward.body(Full::new(body)) else { return s3_error(StatusCode::BAD_REQUEST, "BadRequest") };
        let response = match self.client.request(forward).await {
            Ok(response) => response,
            Err(_) => return s3_error(StatusCode::BAD_GATEWAY, "UpstreamUnavailable"),
        };
        if let Fault::LoseAnswer = fault {
            self.counts.answer_lost.fetch_add(1, Ordering::Relaxed);
            return s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
        }
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// Replace the emulator's fault spec at run time (`POST /__faults`).
pub async fn set_emulator_faults(endpoint: &str, spec: &str) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(format!("{endpoint}/__faults")).body(Full::new(Bytes::from(spec.to_string()))).unwrap();
    let response = client.request(request).await.expect("emulator answers");
    assert!(response.status().is_success(), "setting faults {spec:?}: {}", response.status());
}

/// The emulator's fault counters (`GET /__faults`).
pub async fn emulator_faults(endpoint: &str) -> serde_json::Value {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(format!("{endpoint}/__faults")).body(Full::new(Bytes::new())).unwrap();
    let response = client.request(request).await.expect("emulator answers");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("fault counters are JSON")
}
