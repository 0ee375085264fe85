//! gRPC peers: tonic's generated `grpc.health.v1.Health` server (from `tonic-health`)
//! with fixed answers, served by hyper over the peer's connection (HTTP/2 over TLS, or
//! h2c with prior knowledge in plaintext).
//!
//! A real gRPC stack answers here, so what the probe classifies is what grpc-go,
//! grpc-java or a mesh proxy put on the wire: the status in trailers after the message,
//! errors as trailers-only answers, percent-encoded `grpc-message`.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tonic::codegen::tokio_stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tracing::debug;

use super::http::Io;
use super::scope::Scope;

/// How a gRPC peer answers `grpc.health.v1.Health/Check`.
#[derive(Clone, Debug)]
pub enum GrpcBehavior {
    /// The health service with these statuses by service name (`""` is the server as a
    /// whole); an unknown service gets `NOT_FOUND`, as grpc-go's and tonic's own health
    /// servers answer.
    Health(BTreeMap<String, ServingStatus>),
    /// Every call gets this status and message: a trailers-only answer, as a mesh proxy
    /// (`PERMISSION_DENIED` from Istio's RBAC, `UNAVAILABLE` with Envoy's upstream
    /// error) or a server without the Health service (`UNIMPLEMENTED`) sends.
    Status(tonic::Code, String),
    /// `SERVING`, padded with an unknown field to this many bytes (a message the probe
    /// must cut off).
    Oversized(usize),
    /// The call is accepted and never answered (`request_timeout`).
    Stall,
}

impl GrpcBehavior {
    /// Health with one service (and the server as a whole) at `status`.
    pub fn health(service: &str, status: ServingStatus) -> Self {
        let mut map = BTreeMap::new();
        map.insert(String::new(), status);
        map.insert(service.to_owned(), status);
        Self::Health(map)
    }
}

/// Serves one connection: HTTP/2 (prior knowledge or ALPN `h2`); a client speaking
/// HTTP/1.1 gets hyper's protocol error.
pub(super) async fn serve<S: Io>(io: S, behavior: &GrpcBehavior, scope: &Scope) {
    let service = TowerToHyperService::new(HealthServer::new(Fixed(Arc::new(behavior.clone()))));
    let result = hyper::server::conn::http2::Builder::new(scope.clone())
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(error) = result {
        debug!(%error, "peer gRPC connection ended");
    }
}

/// The Health service answering as configured.
#[derive(Debug)]
struct Fixed(Arc<GrpcBehavior>);

#[tonic::async_trait]
impl Health for Fixed {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        match self.0.as_ref() {
            GrpcBehavior::Health(statuses) => {
                let service = &request.get_ref().service;
                match statuses.get(service) {
                    Some(s) => Ok(Response::new(HealthCheckResponse { status: *s as i32 })),
                    None => Err(Status::not_found(format!("unknown service {service}"))),
                }
            }
            GrpcBehavior::Status(code, message) => Err(Status::new(*code, message.clone())),
            GrpcBehavior::Oversized(_) => {
                // Served by `Padded` below; tonic's generated server cannot pad.
                Err(Status::internal("unreachable"))
            }
            GrpcBehavior::Stall => std::future::pending().await,
        }
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("the demo peers answer Check only"))
    }
}

/// A `HealthCheckResponse` with an extra (unknown to clients) bytes field: the
/// oversized answer. Same field 1 as the real message, so it decodes as one.
#[derive(Clone, PartialEq, prost::Message)]
struct Padded {
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(bytes = "vec", tag = "15")]
    padding: Vec<u8>,
}

/// Serves the oversized answer with tonic's unary server machinery and prost codec.
pub(super) async fn serve_oversized<S: Io>(io: S, bytes: usize, scope: &Scope) {
    let service = hyper::service::service_fn(
        move |req: http::Request<hyper::body::Incoming>| async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                Padded,
                HealthCheckRequest,
            >::default());
            let svc = PaddedCheck(bytes);
            Ok::<_, std::convert::Infallible>(grpc.unary(svc, req).await)
        },
    );
    let result = hyper::server::conn::http2::Builder::new(scope.clone())
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(error) = result {
        debug!(%error, "peer gRPC connection ended");
    }
}

#[derive(Clone, Copy)]
struct PaddedCheck(usize);

impl tonic::server::UnaryService<HealthCheckRequest> for PaddedCheck {
    type Response = Padded;
    type Future = std::future::Ready<Result<Response<Padded>, Status>>;

    fn call(&mut self, _request: Request<HealthCheckRequest>) -> Self::Future {
        std::future::ready(Ok(Response::new(Padded {
            status: ServingStatus::Serving as i32,
            padding: vec![b'x'; self.0],
        })))
    }
}
