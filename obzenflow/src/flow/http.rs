//! A flow's live view over HTTP (feature `http`): `/metrics` (Prometheus
//! text exposition), `/topology` (JSON) and `/health` (JSON; status 503 once
//! the flow failed or was aborted). HTTP/1.1 with hyper; read-only, `GET`
//! and `HEAD` only.
//!
//! The server stays up under exhaustion: at most [`MAX_CONNECTIONS`] are
//! served at once (the rest wait in the listen queue); a client has
//! [`HEADER_TIMEOUT`] to send a request's headers and a connection lives at
//! most [`CONNECTION_LIFETIME`], so idle or half-sent connections cannot
//! hold it; and when accepting fails (out of file descriptors), it backs off
//! and logs the failure at most once per [`ACCEPT_ERROR_LOG_INTERVAL`], with
//! how many it did not log.

use super::handle::{FlowHandle, FlowState};
use super::metrics::FlowView;
use crate::fsm::StateVariant;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The address the runner serves on when not told otherwise: loopback only.
#[cfg_attr(not(feature = "app"), allow(dead_code))]
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// The most connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send a request's headers.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection is kept at most (scrapers reconnect).
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);
/// A failing accept is logged at most once per this interval.
pub(crate) const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// The longest pause after a failed accept.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// An HTTP endpoint serving a flow's live view. It keeps serving after the
/// flow ends (the last figures stay readable) until it is shut down or
/// dropped.
#[derive(Debug)]
pub struct FlowServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl FlowServer {
    /// The address it listens on (with the port chosen, if `:0` was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for FlowServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FlowHandle {
    /// Serves the flow's `/metrics`, `/topology` and `/health` on `addr`
    /// (use a loopback address unless the port is meant to be reachable from
    /// other machines; port 0 picks a free one). Must be called inside a
    /// tokio runtime; the flow may be running or not yet started.
    pub async fn serve(&self, addr: impl ToSocketAddrs) -> io::Result<FlowServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(accept(listener, self.view(), stop));
        Ok(FlowServer {
            addr,
            shutdown: Some(shutdown),
            task,
        })
    }
}

/// Logs a repeating error at most once per interval, with how many times
/// it happened since it was last logged.
struct Throttled {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl Throttled {
    fn error(&mut self, error: &io::Error) {
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_INTERVAL);
        if due {
            tracing::warn!(%error, also_since_last_logged = self.unlogged, "metrics endpoint cannot accept a connection; backing off");
            self.logged_at = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
    }
}

async fn accept(listener: TcpListener, view: FlowView, mut stop: oneshot::Receiver<()>) {
    // Dropping the set when the loop ends closes the open connections.
    let mut connections = JoinSet::new();
    let mut throttled = Throttled {
        logged_at: None,
        unlogged: 0,
    };
    // After a failed accept: how long to pause (doubling while accepts keep
    // failing), and until when.
    let mut backoff = Duration::ZERO;
    let mut paused_until: Option<Instant> = None;
    loop {
        let room = connections.len() < MAX_CONNECTIONS;
        let stream = tokio::select! {
            _ = &mut stop => return,
            // Reap finished connections as they end (first, so that their
            // descriptors are free before the next accept).
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)), if paused_until.is_some() => {
                paused_until = None;
                continue;
            }
            accepted = listener.accept(), if room && paused_until.is_none() => match accepted {
                Ok((stream, _)) => {
                    backoff = Duration::ZERO;
                    stream
                }
                Err(error) => {
                    // Out of file descriptors and the like: the next accept
                    // may work once connections close; do not spin meanwhile.
                    throttled.error(&error);
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                    paused_until = Some(Instant::now() + backoff);
                    continue;
                }
            },
        };
        let view = view.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                std::future::ready(Ok::<_, Infallible>(respond(&view, &request)))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            // A connection past its lifetime is dropped, and so closed.
            if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                tracing::debug!(%error, "metrics endpoint connection ended with an error");
            }
        });
    }
}

#[derive(Serialize)]
struct Health<'a> {
    flow: &'a str,
    state: String,
    healthy: bool,
    running: bool,
    stages: Vec<StageHealth>,
}

#[derive(Serialize)]
struct StageHealth {
    name: String,
    state: String,
}

fn respond(view: &FlowView, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            view.render_metrics(),
        ),
        "/topology" => reply(StatusCode::OK, "application/json", view.topology.to_json()),
        "/health" => {
            let state = view.state.borrow().clone();
            let healthy = !matches!(state, FlowState::Failed { .. } | FlowState::Aborted { .. });
            let health = Health {
                flow: &view.name,
                state: state.variant_name().to_lowercase(),
                healthy,
                running: matches!(state, FlowState::Running | FlowState::Stopping),
                stages: view
                    .stages
                    .iter()
                    .map(|stage| StageHealth {
                        name: stage.name.to_string(),
                        state: stage.status.borrow().to_string(),
                    })
                    .collect(),
            };
            reply(
                if healthy {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "application/json",
                // Strings and booleans: serializing cannot fail.
                serde_json::to_string_pretty(&health).unwrap_or_default(),
            )
        }
        "/" => reply(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            format!(
                "flow `{}`: /metrics (Prometheus), /topology (JSON), /health (JSON)\n",
                view.name
            ),
        ),
        other => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no page at {other}: try /metrics, /topology or /health\n"),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
