//! The agent (`mtls-prober run`): scheduled edges, metrics, endpoints, live reloads of
//! the config and identity files, the `[serve]` listener and `[[discover]]` peers.

pub mod discover;
pub mod edges;
pub mod fleet;
pub mod http;
mod identity;
pub mod metrics;
pub mod reload;
pub mod runbook;
pub mod serve;
pub mod status_page;
pub mod view;
pub mod window;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::{self, Config, Discover, Env, FleetConfig};
use crate::identity::Credentials;
use crate::memory;
use crate::probe::{Prober, Resolver};
use crate::sync::lock;
use edges::{EdgeSet, EdgeSetOptions, EdgeSink};
use fleet::Gate;
use identity::{IdentitySource, identity_loop, log_identity, workload_api_events};
use metrics::Metrics;
use reload::{IdentityReloader, content_digest, identity_paths};
use view::{AgentView, EdgeView};

/// How often the config file is checked for changes (SIGHUP reloads at once).
pub const CONFIG_POLL: Duration = Duration::from_secs(2);

/// What the endpoints read.
pub struct AgentState {
    /// The `source` label.
    pub source: String,
    /// When the agent started.
    pub started: SystemTime,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The scheduled edges.
    pub edges: EdgeSet,
    /// The fleet's gate in front of `edges`: every edge is added and removed through it.
    pub fleet: Arc<Gate>,
    fleet_config: watch::Sender<Option<FleetConfig>>,
    creds: watch::Receiver<Arc<Credentials>>,
    config_file: PathBuf,
    /// The running config without its targets: the edges hold the one copy of each
    /// (10,000 targets are ≈ 6 MB), so `current.targets` is always empty.
    current: Mutex<Config>,
    config_problem: Mutex<Option<String>>,
    identity_problem: Mutex<Option<String>>,
    clock: Arc<dyn Clock>,
}

impl AgentState {
    /// `Ok` once config and identity are loaded and the first round completed.
    pub fn readiness(&self) -> Result<(), String> {
        if lock(&self.current).identity.is_some() {
            let creds = self.creds.borrow();
            if let Err(e) = &creds.bundle {
                return Err(format!("identity not loaded: {e}"));
            }
            if let Err(e) = &creds.client {
                return Err(format!("identity not loaded: {e}"));
            }
        }
        self.fleet.readiness()?;
        if !self.edges.first_round_complete() {
            return Err("the first round of probes has not completed yet".into());
        }
        Ok(())
    }

    /// The header facts of the status page.
    pub fn agent_view(&self) -> AgentView {
        let creds = self.creds.borrow();
        let not_before = creds.client.as_ref().ok().map(|c| c.leaf.not_before);
        // Read apart: a guard in the struct literal below would live to its end, and
        // `readiness()` there takes the same lock.
        let (runbook_base_url, cert_expiry_warn_floor) = {
            let config = lock(&self.current);
            (
                config.agent.runbook_base_url.clone(),
                config.agent.cert_expiry_warn_floor,
            )
        };
        let (spiffe, not_after, mut problem) = match &creds.client {
            Ok(c) => (
                c.spiffe_id.as_ref().map(ToString::to_string),
                Some(c.leaf.not_after),
                None,
            ),
            Err(e) if lock(&self.current).identity.is_some() => (None, None, Some(e.clone())),
            Err(_) => (None, None, None),
        };
        if let Some(p) = lock(&self.identity_problem).clone() {
            problem = Some(match not_after {
                Some(na) if na > self.clock.now() => format!(
                    "the last reload failed, the previous identity is kept until it expires at {}: {p}",
                    crate::identity::load::rfc3339(na)
                ),
                _ => p,
            });
        }
        AgentView {
            source: self.source.clone(),
            version: env!("CARGO_PKG_VERSION"),
            started: self.started,
            ready: self.readiness(),
            identity_spiffe_id: spiffe,
            identity_not_after: not_after,
            identity_problem: problem,
            config_file: self.config_file.display().to_string(),
            config_problem: lock(&self.config_problem).clone(),
            fleet: self.fleet.view(),
            identity_not_before: not_before,
            runbook_base_url,
            cert_expiry_warn_floor,
        }
    }

    /// Snapshots of every edge with the fleet's facts (why this agent probes it, who
    /// else does), for the API and the status page.
    pub fn edge_views(&self) -> Vec<EdgeView> {
        let mut views = self.edges.views();
        self.fleet.annotate(&mut views);
        views
    }
}

/// How to start the agent.
pub struct AgentOptions {
    /// The config file.
    pub config_path: PathBuf,
    /// `MTLS_PROBER_*` overrides.
    pub env: Env,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

/// A started agent.
pub struct Agent {
    state: Arc<AgentState>,
    shutdown_tx: watch::Sender<bool>,
    addr: SocketAddr,
    serve_addr: Option<SocketAddr>,
    max_timeout: Duration,
}

impl Agent {
    /// Loads the config and identity, binds the listeners and starts every task. Errors
    /// (bad config, a port in use) are for the caller to report; nothing runs then.
    pub async fn start(opts: AgentOptions) -> Result<Self, String> {
        let mut config = config::load(&opts.config_path, &opts.env).map_err(|e| e.to_string())?;
        let source = config.agent.source.clone();
        let metrics = Metrics::new(&source).map_err(|e| format!("metrics: {e}"))?;
        let resolver = Resolver::new(&config.agent.dns_servers);
        let prober = Prober::new(resolver.clone(), opts.clock.clone());
        let creds = Credentials::load(
            config.identity.as_ref(),
            prober.provider(),
            opts.clock.now(),
        );
        // The Workload API's first answer is logged by its own task.
        let from_files = config
            .identity
            .as_ref()
            .is_some_and(|c| c.workload_api.is_none());
        log_identity(&creds, from_files);
        if let Ok(c) = &creds.client {
            metrics.set_identity_not_after(Some(c.leaf.not_after));
        }
        let (creds_tx, creds_rx) = watch::channel(Arc::new(creds));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The Workload API stream starts before the edges, so that the first round of
        // probes uses the SVID when the Workload API answers at once (a local SPIRE
        // agent answers in milliseconds); the edges re-prepare when it arrives later.
        let identity_source = match config
            .identity
            .as_ref()
            .and_then(|c| c.workload_api.clone())
        {
            Some(wa) => {
                let events = crate::identity::workload::spawn_follow(
                    wa.clone(),
                    prober.provider().clone(),
                    opts.clock.clone(),
                    creds_tx,
                    shutdown_rx.clone(),
                )
                .await;
                IdentitySource::WorkloadApi(wa, events)
            }
            None => IdentitySource::Files(creds_tx),
        };

        let listener = TcpListener::bind(config.agent.listen).await.map_err(|e| {
            format!(
                "cannot listen on {} (agent.listen): {e}",
                config.agent.listen
            )
        })?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let serve_listener = match &config.serve {
            Some(s) => Some(
                TcpListener::bind(s.listen)
                    .await
                    .map_err(|e| format!("cannot listen on {} (serve.listen): {e}", s.listen))?,
            ),
            None => None,
        };
        let serve_addr = serve_listener.as_ref().and_then(|l| l.local_addr().ok());

        let edges = EdgeSet::new(EdgeSetOptions {
            source: source.clone(),
            prober: prober.clone(),
            creds: creds_rx.clone(),
            max_concurrency: config.agent.max_concurrency,
            windows: config.agent.windows.clone(),
            jitter: config.agent.jitter,
            metrics: Some(metrics.clone()),
            shutdown: shutdown_rx.clone(),
            observer: None,
            log_transitions: true,
        });
        let gate = Arc::new(Gate::new(
            edges.clone(),
            fleet::initial_rule(config.fleet.as_ref(), opts.clock.as_ref()),
        ));
        let (fleet_config, fleet_config_rx) = watch::channel(config.fleet.clone());
        let max_timeout = config
            .targets
            .iter()
            .map(|t| t.timeout)
            .max()
            .unwrap_or_default();
        // The gate and the edges share the one copy of each target (`current` keeps
        // the rest of the config).
        for t in std::mem::take(&mut config.targets) {
            gate.upsert(t, true);
        }
        let state = Arc::new(AgentState {
            source: source.clone(),
            started: opts.clock.now(),
            metrics: metrics.clone(),
            edges: edges.clone(),
            fleet: gate.clone(),
            fleet_config,
            creds: creds_rx.clone(),
            config_file: opts.config_path.clone(),
            current: Mutex::new(config.clone()),
            config_problem: Mutex::new(None),
            identity_problem: Mutex::new(None),
            clock: opts.clock.clone(),
        });
        let discovers = Discovers::new(
            gate.clone(),
            resolver.clone(),
            shutdown_rx.clone(),
            metrics.clone(),
        );
        discovers.sync(&config.discover);
        tokio::spawn(fleet::run(
            gate,
            fleet_config_rx,
            resolver,
            opts.clock.clone(),
            shutdown_rx.clone(),
        ));

        tokio::spawn(http::serve(listener, state.clone(), shutdown_rx.clone()));
        // The first round's burst of concurrent handshakes is the largest transient
        // of a start; its freed pages go back to the kernel once it is over.
        {
            let edges = edges.clone();
            tokio::spawn(async move {
                edges.wait_first_round().await;
                memory::release_freed_later();
            });
        }
        if let (Some(l), Some(s)) = (serve_listener, &config.serve) {
            let mut shutdown = shutdown_rx.clone();
            tokio::spawn(serve::run(
                l,
                s.client_auth,
                source.clone(),
                creds_rx.clone(),
                async move {
                    let _ = shutdown.changed().await;
                },
            ));
        }
        let identity_changed = Arc::new(Notify::new());
        match identity_source {
            IdentitySource::WorkloadApi(wa, events) => {
                tokio::spawn(workload_api_events(state.clone(), wa.socket, events));
            }
            IdentitySource::Files(creds_tx) => {
                let digest = config
                    .identity
                    .as_ref()
                    .map(|c| content_digest(&identity_paths(c)));
                tokio::spawn(identity_loop(
                    state.clone(),
                    IdentityReloader::new(prober.provider().clone(), digest),
                    creds_tx,
                    identity_changed.clone(),
                    shutdown_rx.clone(),
                ));
            }
        }
        tokio::spawn(config_loop(
            state.clone(),
            opts,
            discovers,
            identity_changed,
            shutdown_rx,
        ));
        tracing::info!(addr = %addr, source = %source, edges = edges.len(), "listening");
        if let Some(a) = serve_addr {
            tracing::info!(addr = %a, "serving mTLS peers");
        }
        Ok(Self {
            state,
            shutdown_tx,
            addr,
            serve_addr,
            max_timeout,
        })
    }

    /// The endpoints' address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `[serve]` address, if configured.
    pub fn serve_addr(&self) -> Option<SocketAddr> {
        self.serve_addr
    }

    /// The shared state (for the demo and the watch).
    pub fn state(&self) -> &Arc<AgentState> {
        &self.state
    }

    /// Stops scheduling, lets in-flight probes finish within their timeout, stops.
    pub async fn shutdown(self) {
        tracing::info!("shutting down: no new probes; waiting for the ones in flight");
        let _ = self.shutdown_tx.send(true);
        self.state
            .edges
            .drain(self.max_timeout + Duration::from_secs(1))
            .await;
        // Not a metric: SPEC §6 fixes the exported names. The load bench reads this.
        let (hits, misses) = crate::tls::chain_cache::totals();
        tracing::info!(
            chain_hits = %hits,
            chain_misses = %misses,
            "verified-chain cache: chains whose intermediates were taken from it (hits) or verified in full (misses)"
        );
    }
}

/// The running `[[discover]]` tasks, by name.
struct Discovers {
    edges: Arc<Gate>,
    resolver: Resolver,
    shutdown: watch::Receiver<bool>,
    metrics: Metrics,
    running: Mutex<BTreeMap<String, (Discover, tokio::task::JoinHandle<()>)>>,
}

impl Discovers {
    fn new(
        edges: Arc<Gate>,
        resolver: Resolver,
        shutdown: watch::Receiver<bool>,
        metrics: Metrics,
    ) -> Self {
        Self {
            edges,
            resolver,
            shutdown,
            metrics,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts, restarts or stops discover tasks to match `wanted`.
    fn sync(&self, wanted: &[Discover]) {
        let mut running = lock(&self.running);
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, (d, _))| !wanted.iter().any(|w| &w.name == *name && w == d))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, task)) = running.remove(&name) {
                task.abort();
            }
            self.metrics.forget_discovery(&name);
            let prefix = format!("{name}/");
            for edge in self.edges.names() {
                if edge.starts_with(&prefix) {
                    self.edges.remove(&edge);
                }
            }
        }
        for d in wanted {
            if !running.contains_key(&d.name) {
                let task = tokio::spawn(discover::run(
                    d.clone(),
                    self.edges.clone(),
                    self.resolver.clone(),
                    self.shutdown.clone(),
                    false,
                    Some(self.metrics.clone()),
                ));
                running.insert(d.name.clone(), (d.clone(), task));
            }
        }
    }
}

async fn config_loop(
    state: Arc<AgentState>,
    opts: AgentOptions,
    discovers: Discovers,
    identity_changed: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let path = opts.config_path.clone();
    // The config file and every file its `include` patterns match now: a changed,
    // new or removed included file is a change too.
    // Digested on the blocking pool: hashing a file of 10,000 targets (2.4 MB) every
    // `CONFIG_POLL` would stall the probes for milliseconds each time.
    let watched = |state: &AgentState| {
        let files = config::input_files(&path, &lock(&state.current));
        async move {
            tokio::task::spawn_blocking(move || {
                content_digest(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())
            })
            .await
            .unwrap_or_default()
        }
    };
    let mut digest = watched(&state).await;
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            () = tokio::time::sleep(CONFIG_POLL) => false,
            () = hangup => true,
            _ = shutdown.changed() => return,
        };
        let now = watched(&state).await;
        if now == digest && !forced {
            continue;
        }
        digest = now;
        // On the blocking pool, so that the runtime keeps probing while a large file is
        // read and validated (10,000 targets: ≈ 0.1 s of CPU). Its transient is one
        // `[[target]]` table at a time (`config::document`); it used to be the `config`
        // crate's tree of the whole file (85 MB), which had to stay inline so that the
        // edges would reuse the freed memory. Every unchanged target comes back as the
        // running copy (`load_reusing`): the new one is dropped as soon as it is
        // validated, so a reload does not hold the matrix twice.
        let loaded = {
            let (path, env) = (path.clone(), opts.env.clone());
            let running = state.fleet.configured();
            tokio::task::spawn_blocking(move || config::load_reusing(&path, &env, &running)).await
        };
        let loaded = loaded.unwrap_or_else(|e| {
            Err(config::ConfigError::new(
                &path,
                None,
                format!("the config load stopped: {e}"),
            ))
        });
        match loaded {
            Ok(new) => {
                apply(&state, &discovers, new, &identity_changed);
                memory::release_freed_later();
                // The new config's include patterns may match other files.
                digest = watched(&state).await;
                state.metrics.config_reload(true);
                *lock(&state.config_problem) = None;
                tracing::info!(file = %path.display(), edges = state.edges.len(), "config reloaded");
            }
            Err(e) => {
                state.metrics.config_reload(false);
                tracing::error!(error = %e, "config reload failed; the running config stays in force");
                *lock(&state.config_problem) = Some(e.to_string());
            }
        }
    }
}

/// Applies a validated new config: edges are added, removed and changed in place (the
/// others keep their history); settings that need a restart are named in the log.
fn apply(state: &AgentState, discovers: &Discovers, mut new: Config, identity_changed: &Notify) {
    let mut current = lock(&state.current);
    let (old_a, new_a) = (&current.agent, &new.agent);
    for (what, changed) in [
        ("agent.source", old_a.source != new_a.source),
        ("agent.listen", old_a.listen != new_a.listen),
        ("agent.windows", old_a.windows != new_a.windows),
        ("agent.dns_servers", old_a.dns_servers != new_a.dns_servers),
        ("serve", current.serve != new.serve),
    ] {
        if changed {
            tracing::warn!(
                setting = what,
                "changed in the config; restart the agent to apply it"
            );
        }
    }
    if old_a.max_concurrency != new_a.max_concurrency {
        state
            .edges
            .set_max_concurrency(old_a.max_concurrency, new_a.max_concurrency);
    }
    let wanted: std::collections::BTreeSet<&str> =
        new.targets.iter().map(|t| t.name.as_str()).collect();
    for old in state.fleet.configured() {
        if !wanted.contains(old.name.as_str()) {
            state.fleet.remove(&old.name);
        }
    }
    drop(wanted);
    // Moved into the gate: one copy of each target (`current.targets` stays empty).
    for t in std::mem::take(&mut new.targets) {
        state.fleet.upsert(t, false);
    }
    discovers.sync(&new.discover);
    if current.fleet != new.fleet {
        state.fleet_config.send_replace(new.fleet.clone());
    }
    // Switching between files and the Workload API (or to another endpoint) needs a
    // restart: the running identity keeps its source.
    let source_of = |c: &Config| c.identity.as_ref().and_then(|i| i.workload_api.clone());
    let source_changed = source_of(&current) != source_of(&new);
    if source_changed {
        tracing::warn!(
            setting = "identity.source",
            "changed in the config; restart the agent to apply it"
        );
    }
    let identity_moved = current.identity != new.identity && !source_changed;
    // Settings that need a restart keep their running values.
    let mut next = new;
    next.agent.source.clone_from(&current.agent.source);
    next.agent.listen = current.agent.listen;
    next.agent.windows.clone_from(&current.agent.windows);
    next.agent
        .dns_servers
        .clone_from(&current.agent.dns_servers);
    next.serve.clone_from(&current.serve);
    if source_changed {
        next.identity.clone_from(&current.identity);
    }
    *current = next;
    drop(current);
    if identity_moved {
        identity_changed.notify_one();
    }
}
