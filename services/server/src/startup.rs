//! Start-up and shutdown: one [`Service`] binds both listeners (REST and gRPC) on one tokio runtime,
//! logs where it listens and which rule sets it serves, and serves until told to stop.
//!
//! Binding is separate from serving so a caller (tests, tools) can bind port 0 and learn the
//! actual addresses first. Shutdown is graceful: on SIGTERM/SIGINT both servers stop accepting,
//! `WatchDepthLimits` streams end with OK, in-flight requests finish (up to
//! `PROTOCOL_SHUTDOWN_GRACE_SECS`), and `run` returns `Ok` so the process exits 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::HeaderValue;
use futures::StreamExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::auth::{ApiKeys, check_exposure};
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::context::{Context, MAX_BODY_BYTES};
use crate::edge::RequestIdLayer;
use crate::edge::admission::{AdmissionLayer, AdmissionSettings, Grpc, RateLimits, Rest};
use crate::edge::conn::{ConnCap, ConnLimits, Guarded};
use crate::edge::memory::RequestMemory;
use crate::edge::methods::{KnownMethods, KnownMethodsLayer};
use crate::edge::streams::{CallBudget, WatchLimits};
use crate::grpc::{AdminService, CoalescingIo, DecisionsService, ProtocolService, pb};
use crate::state::AppState;

type ProtocolServer =
    pb::treatment_protocol_service_server::TreatmentProtocolServiceServer<ProtocolService>;
type AdminServer = pb::rule_set_admin_service_server::RuleSetAdminServiceServer<AdminService>;
type DecisionsServer = pb::decision_log_service_server::DecisionLogServiceServer<DecisionsService>;

/// A bound, not yet serving, server.
pub struct Service {
    settings: Settings,
    /// The FHIR servers CDS Hooks calls may be completed from (the CDS adapter's).
    cds_fhir: Option<Arc<crate::cds::fetch::FhirFetch>>,
    http: TcpListener,
    grpc: TcpListener,
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    ctx: Context,
    shutdown: watch::Sender<bool>,
}

/// Refuses a key (or JWT issuer) whose clinic is a base rule set's id: its `admin` scope would
/// manage the base every clinic is served, which only `platform` may.
fn refuse_base_tenants(keys: &ApiKeys, catalog: &crate::catalog::Catalog) -> anyhow::Result<()> {
    let bases: Vec<String> = catalog
        .refs()
        .into_iter()
        .filter(|r| r.base.is_none())
        .map(|r| r.id)
        .collect();
    if let Some(t) = keys.tenants().into_iter().find(|t| bases.contains(t)) {
        anyhow::bail!(
            "API keys: tenant `{t}` is the id of a base rule set, not a clinic: a clinic key \
             would manage the base every clinic is served (give operators the `platform` scope \
             and clinics their own tenant)"
        );
    }
    Ok(())
}

/// Loads the API keys: the keys file, else `PROTOCOL_API_KEYS`, else none (open mode).
fn load_keys(settings: &Settings) -> anyhow::Result<ApiKeys> {
    match (&settings.api_keys_file, &settings.api_keys) {
        (Some(path), _) => ApiKeys::load(path),
        (None, Some(text)) if !text.trim().is_empty() => {
            ApiKeys::parse(text).context("PROTOCOL_API_KEYS")
        }
        _ => Ok(ApiKeys::open()),
    }
}

/// The rule sets to start with: a folder when configured, else the ones compiled in.
fn load_catalog(settings: &Settings) -> anyhow::Result<Catalog> {
    match &settings.rulesets_dir {
        Some(dir) => Catalog::from_dir(dir),
        None => Catalog::bundled(),
    }
}

impl Service {
    /// Loads keys and rule sets and binds both listeners. Refuses to expose an open server.
    pub async fn bind(settings: Settings) -> anyhow::Result<Self> {
        let keys = load_keys(&settings)?;
        check_exposure(&keys, &[settings.http_addr, settings.grpc_addr])?;
        let local = load_catalog(&settings)?;
        refuse_base_tenants(&keys, &local)?;
        // The addresses are taken first: loading may wait (a seed's grace), and an address
        // another process takes meanwhile would fail the start late.
        let http = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("binding the REST listener on {}", settings.http_addr))?;
        let grpc = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("binding the gRPC listener on {}", settings.grpc_addr))?;
        let http_addr = http.local_addr()?;
        let grpc_addr = grpc.local_addr()?;
        // With Redis: its active rule sets (seeded from the local ones when it has none), or the
        // local ones while it is unreachable; the sync task (started in `run_until`) keeps trying.
        // Redis settings that cannot work stop the server here, naming the setting.
        crate::store::RedisConfig::from_settings(&settings)?;
        let (catalog, store) = crate::store::connect_and_load(&settings, local)
            .await
            .context("PROTOCOL_REDIS_URL")?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        // The facts the rule sets declare, for the decision log's masking setting.
        let known_facts: std::collections::BTreeSet<String> = catalog
            .rulesets
            .values()
            .flat_map(|rs| rs.facts().facts.into_iter().map(|f| f.id))
            .collect();
        let decision_log = crate::decision_log::DecisionLog::start(
            &settings,
            known_facts.iter().map(String::as_str),
        )?;
        let mut state = AppState::new(catalog);
        state.watch_limits = Arc::new(WatchLimits::new(
            settings.max_watch_streams,
            settings.max_watch_streams_per_key,
        ));
        let ctx = Context {
            state,
            keys: Arc::new(keys),
            shutdown: shutdown_rx,
            heartbeat: Duration::from_secs(settings.watch_heartbeat_secs.max(1)),
            max_staleness_secs: settings.max_staleness_secs,
            stale_policy: settings.stale_policy,
            // Behind an Arc: the context is cloned for every request.
            store: store.map(Arc::new),
            decision_log,
        };
        let cds_fhir = crate::cds::fetch::FhirFetch::new(&settings.cds_fhir_servers)?.map(Arc::new);
        if ctx.store.is_some() {
            // Before serving, so `/readyz` says `redis: down` rather than `up` from the start.
            ctx.state
                .health
                .redis_configured
                .store(true, std::sync::atomic::Ordering::Relaxed);
            ctx.state.health.redis_up.store(
                ctx.catalog().origin == crate::catalog::Origin::Redis,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        Ok(Self {
            settings,
            cds_fhir,
            http,
            grpc,
            http_addr,
            grpc_addr,
            ctx,
            shutdown,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The shared state (for the Redis store, which swaps rule sets into it).
    pub fn state(&self) -> &AppState {
        &self.ctx.state
    }

    fn announce(&self) {
        tracing::info!(
            rest = %self.http_addr,
            grpc = %self.grpc_addr,
            "protocol-server listening: REST on http://{}, gRPC on {}",
            self.http_addr,
            self.grpc_addr
        );
        let catalog = self.ctx.catalog();
        for r in catalog.refs() {
            tracing::info!(
                id = %r.id,
                version = %r.version,
                digest = %r.digest,
                base = r.base.as_ref().map(|b| b.id.as_str()).unwrap_or(""),
                origin = ?catalog.origin,
                "serving rule set {} {}",
                r.id,
                r.version
            );
        }
        if self.ctx.keys.is_open() {
            tracing::warn!(
                "no API keys configured: the server is open (every scope, base rule set) and \
                 listens on loopback only"
            );
        } else {
            tracing::info!(
                keys = self.ctx.keys.len(),
                jwt_issuers = self.ctx.keys.jwt_issuers().map_or(0, |j| j.ids().len()),
                tenants = ?self.ctx.keys.tenants(),
                "API keys loaded"
            );
        }
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    ///
    /// The steps, in order: the Redis sync task, the metrics' observers, the edges' settings
    /// (a bad `PROTOCOL_CORS_ORIGINS` stops start-up here), the door, both servers, then serving
    /// until `signal` (a server that stops first is an error) and the drain.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.announce();
        let _sync_guard = self.spawn_sync();
        crate::metrics::observe(&self.ctx.state);
        crate::metrics::observe_decision_log(self.ctx.decision_log.as_ref());
        let Self {
            settings,
            cds_fhir,
            http,
            grpc,
            ctx,
            shutdown,
            ..
        } = self;
        let edges = EdgeSettings::from_settings(&settings, &ctx)?;
        // The keys of JWT issuers configured by URL, fetched before the first request.
        let _jwks_guard = match ctx.keys.jwt_issuers() {
            Some(issuers) => crate::jwks::load(issuers)
                .await?
                .map(|f| AbortOnDrop(tokio::spawn(f.run()))),
            None => None,
        };

        // The door, built once: every adapter holds a clone, so its caches (pinned versions,
        // notice board, contracts) exist once per process.
        let door = crate::app::App::new(ctx.clone());
        let http = rest_server(
            http,
            &door,
            cds_fhir,
            settings.cds_bookable_cards,
            &edges,
            ctx.shutdown.clone(),
        );
        let (health, grpc) = grpc_server(grpc, &door, &edges, ctx.shutdown.clone()).await?;
        // gRPC health follows readiness (`/readyz`): SERVING exactly while it answers 200.
        let health_follower =
            AbortOnDrop(tokio::spawn(follow_readiness(ctx.clone(), health.clone())));

        let mut servers = Servers {
            http: tokio::spawn(http),
            grpc: tokio::spawn(grpc),
        };
        servers.until(signal).await?;
        // Stop following readiness first, so nothing says SERVING again while draining.
        drop(health_follower);
        not_serving(&health).await;
        let _ = shutdown.send(true);

        let grace = Duration::from_secs(settings.shutdown_grace_secs);
        let drained = tokio::time::timeout(grace, servers.finished()).await;
        // The decisions answered while draining are in the decision log's queue: give the writer
        // a moment to write them (bounded: PostgreSQL may be down).
        if let Some(log) = &ctx.decision_log {
            log.flush(Duration::from_secs(5)).await;
        }
        log_drained(drained, grace);
        Ok(())
    }

    /// Keeps the served rule sets equal to the active ones in Redis (pub/sub and periodic
    /// reconcile); never ends on its own, aborted on shutdown (when the guard is dropped).
    /// `None` without Redis.
    fn spawn_sync(&self) -> Option<AbortOnDrop> {
        let sync = self.ctx.store.as_deref().cloned().map(|store| {
            crate::store::spawn_sync(
                self.ctx.state.clone(),
                store,
                crate::store::SyncOptions::from_settings(&self.settings),
            )
        });
        sync.map(AbortOnDrop)
    }
}

/// What the edges of both servers are built from, read from the settings once so that REST and
/// gRPC enforce the same request timeout, connection limits and per-key rate limit.
struct EdgeSettings {
    /// `PROTOCOL_REQUEST_TIMEOUT_SECS` (at least a second).
    timeout: Duration,
    limits: ConnLimits,
    /// The admission layers' settings; the rate limit and the memory budget are shared by both
    /// servers (a key's quota is one, whichever protocol it calls; the memory is one).
    admission: AdmissionSettings,
    /// The health and reflection call budget (`CallBudget`).
    max_health_calls: usize,
    /// `PROTOCOL_CORS_ORIGINS`, checked here: a value that is no header value stops start-up.
    cors_origins: Vec<HeaderValue>,
}

impl EdgeSettings {
    fn from_settings(s: &Settings, ctx: &Context) -> anyhow::Result<Self> {
        let limits = ConnLimits::from_settings(s);
        let rate = RateLimits::new(&ctx.keys, s.rate_limit, s.rate_limit_window_secs);
        let cors_origins = s
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(o).with_context(|| format!("PROTOCOL_CORS_ORIGINS: `{o}`"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            timeout: Duration::from_secs(s.request_timeout_secs.max(1)),
            limits,
            admission: AdmissionSettings {
                max_in_flight: s.max_in_flight,
                keys: ctx.keys.clone(),
                max_in_flight_per_key: s.max_in_flight_per_key,
                memory: RequestMemory::new(s.request_memory_mb),
                body_read_timeout: Duration::from_secs(s.body_read_timeout_secs.max(1)),
                rate,
            },
            max_health_calls: s.max_health_calls,
            cors_origins,
        })
    }
}

/// The REST server, not yet running (the caller spawns it): the router, whose layer stack is in
/// `crate::http::router`, served on `listener` by `crate::http::serve` (connection limits,
/// graceful shutdown).
fn rest_server(
    listener: TcpListener,
    door: &crate::app::App,
    fhir: Option<Arc<crate::cds::fetch::FhirFetch>>,
    bookable_cards: bool,
    edges: &EdgeSettings,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = std::io::Result<()>> + use<> {
    let cds = crate::cds::CdsState {
        indexes: Arc::default(),
        fhir,
        bookable_cards,
    };
    let router = crate::http::router(
        door.clone(),
        cds,
        crate::http::Edges {
            request_timeout: edges.timeout,
            admission: AdmissionLayer::<Rest>::new(&edges.admission),
            cors_origins: edges.cors_origins.clone(),
        },
    );
    crate::http::serve(listener, router, edges.limits, shutdown)
}

/// The gRPC server, not yet running (the caller spawns it), and the health reporter its services
/// were marked SERVING in (the caller keeps it following readiness, and marks them NOT_SERVING
/// on shutdown).
async fn grpc_server(
    listener: TcpListener,
    door: &crate::app::App,
    edges: &EdgeSettings,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(
    HealthReporter,
    impl Future<Output = Result<(), tonic::transport::Error>> + use<>,
)> {
    let (health, routes) = grpc_routes(door, edges.max_health_calls).await?;
    let limits = edges.limits;
    // The layer stack, outermost first: request id (REST's layer: a plain one accepted, else a
    // UUID v7; echoed in the response metadata, never indexed by HPACK) → unknown methods
    // answered UNIMPLEMENTED (never logged above DEBUG) → request span, log line and metrics
    // → admission (duplicate credentials, per-key rate limit, load shedding; health and
    // reflection exempt) → the services (health and reflection under their call budget; gzip
    // both ways).
    let server = tonic::transport::Server::builder()
        .timeout(edges.timeout)
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .layer(RequestIdLayer)
        .layer(KnownMethodsLayer(KnownMethods::served()))
        .layer(crate::observe::GrpcLayer)
        .layer(AdmissionLayer::<Grpc>::new(&edges.admission))
        .add_routes(routes)
        .serve_with_incoming_shutdown(grpc_incoming(listener, limits), stopped(shutdown));
    Ok((health, server))
}

/// The gRPC services, in the order they are routed: health and reflection, then the protocol,
/// admin and decision-log services (gzip both ways; a question as large as REST's body limit, a
/// rule set as large as REST's rule-set limit). Health says SERVING for each before the server
/// starts.
async fn grpc_routes(
    door: &crate::app::App,
    max_health_calls: usize,
) -> anyhow::Result<(HealthReporter, Routes)> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ProtocolServer>().await;
    health.set_serving::<AdminServer>().await;
    health.set_serving::<DecisionsServer>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc's error details (ErrorInfo, BadRequest, RetryInfo, ...): what grpcurl and
        // buf curl need to print a status's details decoded rather than as base64.
        .register_encoded_file_descriptor_set(crate::grpc::ERROR_DETAILS_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc's error details (ErrorInfo, BadRequest, RetryInfo, ...): what grpcurl and
        // buf curl need to print a status's details decoded rather than as base64.
        .register_encoded_file_descriptor_set(crate::grpc::ERROR_DETAILS_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building the reflection service")?;
    let protocol = ProtocolServer::new(ProtocolService::new(door.clone()))
        .max_decoding_message_size(MAX_BODY_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let admin = AdminServer::new(AdminService::new(door.clone()))
        .max_decoding_message_size(crate::http::rulesets::MAX_RULESET_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let decisions = DecisionsServer::new(DecisionsService::new(door.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    // Health and reflection need no key: one budget for both, streams included.
    let budget = CallBudget::new(max_health_calls);
    let routes = Routes::new(budget.wrap(health_service))
        .add_service(budget.wrap(reflection_v1))
        .add_service(budget.wrap(reflection_v1alpha))
        .add_service(protocol)
        .add_service(admin)
        .add_service(decisions);
    Ok((health, routes))
}

/// The gRPC listener's connections: TCP no-delay and keep-alive, each admitted under the
/// connection cap (a connection over it is closed at once) and given the header-read timeout;
/// writes coalesced (`CoalescingIo`).
fn grpc_incoming(
    listener: TcpListener,
    limits: ConnLimits,
) -> impl futures::Stream<Item = std::io::Result<Guarded<CoalescingIo>>> {
    let cap = ConnCap::new(
        "grpc",
        limits.max_connections,
        limits.max_connections_per_peer,
    );
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(limits.tcp_keepalive)
        .filter_map(move |accepted| {
            let admitted = match accepted {
                Ok(tcp) => cap
                    .admit(tcp.peer_addr().ok().map(|a| a.ip()))
                    .map(|permit| {
                        Ok(Guarded::new(
                            CoalescingIo::new(tcp),
                            permit,
                            limits.header_read_timeout,
                        ))
                    }),
                Err(e) => Some(Err(e)),
            };
            std::future::ready(admitted)
        })
}

/// Both servers, running.
struct Servers {
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Servers {
    /// Serves until `signal` completes. A server that stops before it is an error: `run_until`
    /// returns it and the process exits non-zero rather than serving half its protocols.
    async fn until(&mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = signal => tracing::info!("shutdown requested: draining in-flight requests"),
            r = &mut self.http => {
                return Err(anyhow::anyhow!("the REST server stopped: {}", outcome(r.map(|r| r.map_err(anyhow::Error::from)))));
            }
            r = &mut self.grpc => {
                return Err(anyhow::anyhow!("the gRPC server stopped: {}", outcome(r.map(|r| r.map_err(anyhow::Error::from)))));
            }
        }
        Ok(())
    }

    /// Completes when both servers have finished (after shutdown was signalled: their in-flight
    /// requests done), with how each ended.
    async fn finished(self) -> (anyhow::Result<()>, anyhow::Result<()>) {
        let (h, g) = tokio::join!(self.http, self.grpc);
        (
            h.map_err(anyhow::Error::from)
                .and_then(|r| r.map_err(anyhow::Error::from)),
            g.map_err(anyhow::Error::from)
                .and_then(|r| r.map_err(anyhow::Error::from)),
        )
    }
}

/// Marks every gRPC service, and the server as a whole (`""`), NOT_SERVING: clients and load
/// balancers stop sending new calls while the in-flight ones drain.
async fn not_serving(health: &HealthReporter) {
    health.set_not_serving::<ProtocolServer>().await;
    health.set_not_serving::<AdminServer>().await;
    health.set_not_serving::<DecisionsServer>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}

/// Logs how the drain ended. Shutdown itself succeeds either way (the process exits 0): a server
/// error while draining, or requests still in flight when the grace period ran out, are logged.
fn log_drained(
    drained: Result<(anyhow::Result<()>, anyhow::Result<()>), tokio::time::error::Elapsed>,
    grace: Duration,
) {
    match drained {
        Ok((Ok(()), Ok(()))) => tracing::info!("shut down cleanly"),
        Ok((h, g)) => {
            for e in [h.err(), g.err()].into_iter().flatten() {
                tracing::error!(error = format!("{e:#}"), "server error during shutdown");
            }
        }
        Err(_) => tracing::warn!(
            grace_secs = grace.as_secs(),
            "shutdown grace period elapsed with requests still in flight"
        ),
    }
}

/// Keeps gRPC health equal to readiness: SERVING (the server as a whole, `""`, and each service)
/// exactly while `/readyz` would answer 200; checked every second and on every rule-set swap.
async fn follow_readiness(ctx: Context, health: HealthReporter) {
    let mut generation = ctx.state.generation.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = generation.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if ctx.is_shutting_down() {
            return;
        }
        let ready = crate::app::readiness::readiness(&ctx, &crate::app::readiness::View::Public).0;
        if last == Some(ready) {
            continue;
        }
        last = Some(ready);
        let status = if ready {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        if !ready {
            tracing::warn!("not ready: gRPC health says NOT_SERVING until /readyz is 200 again");
        }
        health.set_service_status("", status).await;
        health
            .set_service_status(crate::grpc::SERVICE_NAME, status)
            .await;
        health
            .set_service_status(crate::grpc::ADMIN_SERVICE_NAME, status)
            .await;
    }
}

/// Aborts a background task when dropped (when `run_until` returns, however it returns).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn outcome(r: Result<anyhow::Result<()>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "unexpectedly".into(),
        Ok(Err(e)) => format!("{e:#}"),
        Err(e) => e.to_string(),
    }
}

/// Completes once shutdown has been signalled.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Binds, serves, and shuts down on SIGTERM/SIGINT: what `main` runs.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    Service::bind(settings)
        .await?
        .run_until(shutdown_signal())
        .await
}
