//! A SPIFFE Workload API server for the tests: the real protocol (service
//! `SpiffeWorkloadAPI`, server-streaming `FetchX509SVID`, the `workload.spiffe.io`
//! header SPIRE insists on) with tonic's server machinery and prost messages, over a
//! Unix socket. The test sets the X.509 context it streams, breaks the streams, or
//! stops and restarts the server at the same path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mtls_prober::demo::pki::{Ca, Leaf};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::codegen::tokio_stream::wrappers::WatchStream;
use tonic::codegen::tokio_stream::{Stream, StreamExt};

// === the messages of workload.proto (field numbers as in the SPIFFE spec) ===

#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    pub svids: Vec<X509Svid>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub crl: Vec<Vec<u8>>,
    #[prost(map = "string, bytes", tag = "3")]
    pub federated_bundles: HashMap<String, Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct X509Svid {
    #[prost(string, tag = "1")]
    pub spiffe_id: String,
    #[prost(bytes = "vec", tag = "2")]
    pub x509_svid: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub x509_svid_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub bundle: Vec<u8>,
    #[prost(string, tag = "5")]
    pub hint: String,
}

/// An SVID entry: `leaf`'s chain and key, and the bundle of its trust domain.
pub fn svid(id: &str, leaf: &Leaf, bundle: &[&Ca]) -> X509Svid {
    X509Svid {
        spiffe_id: id.to_owned(),
        x509_svid: leaf.chain.iter().flat_map(|c| c.to_vec()).collect(),
        x509_svid_key: leaf.key_pkcs8_der().to_vec(),
        bundle: der_bundle(bundle),
        hint: String::new(),
    }
}

/// Concatenated DER roots, as the Workload API carries a bundle.
pub fn der_bundle(roots: &[&Ca]) -> Vec<u8> {
    roots.iter().flat_map(|r| r.cert().to_vec()).collect()
}

/// A response with these SVIDs and federated bundles (`spiffe://td` → roots).
pub fn response(svids: Vec<X509Svid>, federated: &[(&str, &[&Ca])]) -> X509SvidResponse {
    X509SvidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles: federated
            .iter()
            .map(|(td, roots)| ((*td).to_owned(), der_bundle(roots)))
            .collect(),
    }
}

// === the server ===

type Current = watch::Sender<Option<Arc<X509SvidResponse>>>;

/// A Workload API server on a Unix socket; stops (and removes the socket) on drop.
pub struct WorkloadApi {
    pub path: PathBuf,
    current: Arc<Current>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl WorkloadApi {
    /// Binds `path` (the bind is the readiness signal) and serves `first`, if any
    /// (`None`: the stream stays silent until [`Self::set`]).
    pub fn start(path: &Path, first: Option<X509SvidResponse>) -> Self {
        let (tx, _) = watch::channel(first.map(Arc::new));
        Self::serve(path, Arc::new(tx))
    }

    fn serve(path: &Path, current: Arc<Current>) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let accept_current = current.clone();
        let accept_tasks = tasks.clone();
        tasks.lock().unwrap().spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let current = accept_current.clone();
                accept_tasks.lock().unwrap().spawn(async move {
                    let svc = service_fn(move |req| {
                        let current = current.clone();
                        async move { Ok::<_, Infallible>(route(req, current).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            path: path.to_owned(),
            current,
            tasks,
        }
    }

    /// Streams `r` to every client from now on (and to new ones first).
    pub fn set(&self, r: X509SvidResponse) {
        self.current.send_replace(Some(Arc::new(r)));
    }

    /// Drops every connection (the clients' streams break) and keeps listening.
    pub fn break_streams(self) -> Self {
        let path = self.path.clone();
        let current = self.current.clone();
        drop(self);
        Self::serve(&path, current)
    }
}

impl Drop for WorkloadApi {
    fn drop(&mut self) {
        self.tasks.lock().unwrap().abort_all();
        let _ = std::fs::remove_file(&self.path);
    }
}

type Stream2 = Pin<Box<dyn Stream<Item = Result<X509SvidResponse, tonic::Status>> + Send>>;

/// The `FetchX509SVID` handler: the current response, then every new one.
#[derive(Clone)]
struct Fetch(Arc<Current>);

impl tonic::codegen::Service<tonic::Request<X509SvidRequest>> for Fetch {
    type Response = tonic::Response<Stream2>;
    type Error = tonic::Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<X509SvidRequest>) -> Self::Future {
        let rx = self.0.subscribe();
        Box::pin(async move {
            // SPIRE refuses a call without the security header.
            if req
                .metadata()
                .get("workload.spiffe.io")
                .map(|v| v.as_bytes())
                != Some(b"true")
            {
                return Err(tonic::Status::invalid_argument(
                    "security header missing from request",
                ));
            }
            let stream = WatchStream::new(rx).filter_map(|r| r.map(|r| Ok((*r).clone())));
            Ok(tonic::Response::new(Box::pin(stream) as Stream2))
        })
    }
}

async fn route(
    req: http::Request<hyper::body::Incoming>,
    current: Arc<Current>,
) -> http::Response<tonic::body::Body> {
    match req.uri().path() {
        "/SpiffeWorkloadAPI/FetchX509SVID" => {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            grpc.server_streaming(Fetch(current), req).await
        }
        _ => tonic::Status::unimplemented("not served by this test server").into_http(),
    }
}
