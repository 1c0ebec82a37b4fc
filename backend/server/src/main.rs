//! `sentiment-server`: the feedback API, durable local log, Hub sync, static files, metrics.
//! This file only parses arguments and wires the library's parts together.

use anyhow::Context;
use clap::Parser;
use hub::{HubClient, Repo};
use sentiment_server::client_key::{self, ClientKeys, SecretSource};
use sentiment_server::data_dir::{self, Persistence};
use sentiment_server::feedback_log::sync::{self, SyncConfig, SyncStatus, Syncer};
use sentiment_server::feedback_log::{FeedbackLog, LogConfig};
use sentiment_server::http::{self, AppState, ConnLimits, CorsOrigins, RateLimit, ServerConfig};
use shared::{Clock, RepoId};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Collects users' corrections durably and syncs them to a Hub dataset.
/// Every flag can also be set through the environment variable shown.
///
/// Hub sync reads the Hub settings from the environment only: HF_ENDPOINT (default
/// https://huggingface.co), a token with write access to the dataset (HF_TOKEN, else the one
/// `hf auth login` saved: HF_TOKEN_PATH or $HF_HOME/token) and SENTIMENT_HUB_TIMEOUT (default
/// 60s: longest a Hub call may take; a file transfer may take longer while bytes keep coming).
///
/// Each stored record carries a pseudonymous client key, a keyed hash of the client's address
/// (never the address). The key's secret is read from the environment only:
/// SENTIMENT_CLIENT_KEY_SECRET (at least 16 bytes; the same on every replica), else a random one
/// kept in DATA_DIR/client-key-secret.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SENTIMENT_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Directory of the local log (segments, sync state, instance id).
    #[arg(long, env = "SENTIMENT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Built frontend (`dist/`), served at `/`.
    #[arg(long = "static", env = "SENTIMENT_STATIC_DIR")]
    static_dir: Option<PathBuf>,
    /// Model bundle directory, served at `/model/`.
    #[arg(long, env = "SENTIMENT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Hub dataset (OWNER/NAME) to sync to; sync also needs a token (HF_TOKEN or a saved login).
    #[arg(long, env = "SENTIMENT_DATASET")]
    dataset: Option<RepoId>,
    /// Seal and sync at least this often (e.g. 30s, 5m, 1h).
    #[arg(long, env = "SENTIMENT_SYNC_EVERY", default_value = "5m", value_parser = humantime::parse_duration)]
    sync_every: Duration,
    /// Seal and sync early once the active segment holds this many records.
    #[arg(long, env = "SENTIMENT_SYNC_MAX_RECORDS", default_value_t = 10_000)]
    sync_max_records: u64,
    /// Segments already in the Hub dataset leave the local disk this long after their last
    /// record (their ids stay in DATA_DIR/dedup.idx, so retries are still recognised); `off`
    /// keeps everything. Without Hub sync nothing is ever deleted.
    #[arg(long, env = "SENTIMENT_RETENTION", default_value = "30d", value_parser = parse_retention)]
    retention: Retention,
    /// This replica's folder in the dataset; default: a random id kept in DATA_DIR/instance-id.
    #[arg(long, env = "SENTIMENT_INSTANCE_ID")]
    instance_id: Option<String>,
    /// The model's labels (comma-separated).
    #[arg(long, env = "SENTIMENT_LABELS", value_delimiter = ',', default_value = "negative,neutral,positive")]
    labels: Vec<String>,
    /// Browser origins allowed to call the API (comma-separated, exact), e.g. https://x.hf.space;
    /// `*` for any origin.
    #[arg(long, env = "SENTIMENT_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// API requests per minute per client (0 = no limit).
    #[arg(long, env = "SENTIMENT_RATE_LIMIT", default_value_t = 120)]
    rate_limit: u32,
    /// Requests a client may make at once above the rate.
    #[arg(long, env = "SENTIMENT_RATE_BURST", default_value_t = 30)]
    rate_burst: u32,
    /// Proxies in front that append to X-Forwarded-For (e.g. 1 behind one reverse proxy; 0 = use the peer address).
    #[arg(long, env = "SENTIMENT_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    trusted_proxy_hops: usize,
    /// Networks those proxies connect from (comma-separated CIDRs); X-Forwarded-For from any
    /// other peer is ignored. Default: loopback and private networks.
    #[arg(long, env = "SENTIMENT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Time a connection may take to send a request's headers, from its opening or the end of
    /// the previous response (so also the idle keep-alive timeout).
    #[arg(long, env = "SENTIMENT_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted (and logged).
    #[arg(long, env = "SENTIMENT_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Longest time a request may take.
    #[arg(long, env = "SENTIMENT_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Requests handled at once; beyond it the server answers 503 at once.
    #[arg(long, env = "SENTIMENT_MAX_IN_FLIGHT", default_value_t = 1024)]
    max_in_flight: usize,
    /// Roll to a new segment at this size in bytes.
    #[arg(long, env = "SENTIMENT_SEGMENT_MAX_BYTES", default_value_t = 8 << 20)]
    segment_max_bytes: u64,
    /// Sliding window of the agreement figures on /metrics (whole hours).
    #[arg(long, env = "SENTIMENT_QUALITY_WINDOW", default_value = "24h", value_parser = humantime::parse_duration)]
    quality_window: Duration,
    /// The champion's agreement baseline (0-1; the registry's), exported on /metrics for the
    /// alert "agreement below baseline".
    #[arg(long, env = "SENTIMENT_AGREEMENT_BASELINE")]
    agreement_baseline: Option<f64>,
    /// /healthz says `degraded` once Hub sync has failed for this long.
    #[arg(long, env = "SENTIMENT_SYNC_DEGRADED_AFTER", default_value = "30m", value_parser = humantime::parse_duration)]
    sync_degraded_after: Duration,
    /// Whether the data dir survives a restart (true/false); default: guessed from its file
    /// system (tmpfs and a container's own overlay layer are not persistent).
    #[arg(long, env = "SENTIMENT_DATA_PERSISTENT")]
    data_persistent: Option<bool>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let cors_origins = CorsOrigins::parse(&args.cors_origins)?;
    if args.agreement_baseline.is_some_and(|b| !(0.0..=1.0).contains(&b)) {
        anyhow::bail!("--agreement-baseline must be between 0 and 1");
    }

    let log_config = LogConfig { max_segment_bytes: args.segment_max_bytes, ..LogConfig::new(&args.data_dir) };
    let log = FeedbackLog::open(log_config)
        .with_context(|| format!("opening the feedback log in {}", args.data_dir.display()))?;

    // Like the Hub token, the secret is never a flag (it would show in `ps`) and never logged.
    let secret = std::env::var(client_key::SECRET_ENV).ok();
    let (client_keys, secret_source) =
        ClientKeys::load(&args.data_dir, secret.as_deref()).context("loading the client-key secret")?;
    drop(secret);

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    // The token is read from the environment only: never a flag, so it stays out of `ps` and
    // shell history.
    let client = match &args.dataset {
        Some(_) => Some(HubClient::from_env().context("reading the Hub settings")?),
        None => None,
    };
    let (status, sync_task, sync_note) = match (&args.dataset, client) {
        (Some(dataset), Some(client)) if client.token_source() != &hub::TokenSource::None => {
            let instance = match &args.instance_id {
                Some(id) => id.clone(),
                None => sync::instance_id(&args.data_dir).context("creating the instance id")?,
            };
            let endpoint = client.endpoint().to_owned();
            let token_note = client.token_source().to_string();
            let mut cfg = SyncConfig::new(Repo::dataset(dataset.clone()), instance.clone(), args.sync_every);
            cfg.max_records = args.sync_max_records;
            cfg.retention = args.retention.0;
            let status = SyncStatus::enabled();
            let syncer = Syncer::new(log.clone(), client, cfg, status.clone(), &args.data_dir)?;
            let task = tokio::spawn(syncer.run(shutdown_rx));
            let note = format!(
                "Hub sync on: dataset {dataset} at {endpoint}, folder data/{instance}/, every {}, with {token_note}",
                humantime::format_duration(args.sync_every)
            );
            (status, Some(task), note)
        }
        (Some(_), _) => (
            SyncStatus::disabled(),
            None,
            "Hub sync OFF: --dataset is set but there is no Hub token (set HF_TOKEN or run `hf auth login`); \
             running local-only"
                .to_owned(),
        ),
        (None, _) => (
            SyncStatus::disabled(),
            None,
            "Hub sync off (local only); set SENTIMENT_DATASET and HF_TOKEN to enable".to_owned(),
        ),
    };

    let persistence = data_dir::detect(&args.data_dir, args.data_persistent);
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        labels: args.labels.clone(),
        static_dir: args.static_dir.clone(),
        model_dir: args.model_dir.clone(),
        cors_origins: cors_origins.clone(),
        rate_limit: RateLimit { per_minute: args.rate_limit, burst: args.rate_burst },
        trusted_proxy_hops: args.trusted_proxy_hops,
        trusted_proxies: if args.trusted_proxies.is_empty() { defaults.trusted_proxies } else { args.trusted_proxies },
        request_timeout: args.request_timeout,
        max_in_flight: args.max_in_flight,
        quality_window: args.quality_window,
        agreement_baseline: args.agreement_baseline,
        sync_degraded_after: args.sync_degraded_after,
        // Two missed rounds (and a minute of slack) before records count as behind.
        sync_behind_after: args.sync_every * 2 + Duration::from_secs(60),
        persistence: persistence.clone(),
        admin_token: std::env::var("SENTIMENT_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        client_keys,
        ..defaults
    };
    let state = AppState::new(log.clone(), config, status.clone(), Clock::system());
    let state_connections = state.connections();
    let app = http::app(state);

    let backlog = u32::try_from(args.max_connections).unwrap_or(u32::MAX).max(1024);
    let listener = http::bind(args.addr, backlog).with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    let records = log.counters().records.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "sentiment-server listening on http://{local} (data dir {}, {records} records stored)",
        args.data_dir.display()
    );
    println!("{sync_note}");
    println!("CORS: {}", cors_origins.describe());
    match &secret_source {
        SecretSource::Environment => println!("client keys: secret from {}", client_key::SECRET_ENV),
        SecretSource::DataDir { path, created } => {
            let warning = format!(
                "WARNING: client keys use the secret {} {} ({} is not set): another replica, or this \
                 one after a data dir reset, gives the same client another key, so the trainer counts \
                 it as several clients. Set {} to one random value (e.g. `openssl rand -hex 32`) on \
                 every replica.",
                if *created { "just created in" } else { "kept in" },
                path.display(),
                client_key::SECRET_ENV,
                client_key::SECRET_ENV,
            );
            println!("{warning}");
            tracing::warn!("{warning}");
        }
    }
    if let Persistence::Ephemeral { how } = &persistence {
        let sync = if status.enabled { "until Hub sync has sent them" } else { "for good: Hub sync is off" };
        let warning = format!(
            "WARNING: the data dir {} is NOT on persistent storage ({how}). Acknowledged records \
             are lost when this container restarts, {sync}. Attach persistent storage (a Space's \
             mounts at /data) or set SENTIMENT_DATA_PERSISTENT=true if this guess is wrong.",
            args.data_dir.display()
        );
        println!("{warning}");
        tracing::warn!("{warning}");
    }

    let limits = ConnLimits {
        header_timeout: args.header_timeout,
        max_connections: args.max_connections,
        ..ConnLimits::default()
    };
    http::serve(listener, app, limits, state_connections, shutdown_signal()).await;

    tracing::info!("stopped accepting; sealing the log");
    log.shutdown().await.context("sealing the feedback log")?;
    let _ = shutdown_tx.send(true);
    if let Some(task) = sync_task {
        let _ = task.await;
    }
    tracing::info!("bye");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `--retention`: a duration, or `off`.
#[derive(Debug, Clone, Copy)]
struct Retention(Option<Duration>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Retention(None));
    }
    humantime::parse_duration(s)
        .map(|d| Retention(Some(d)))
        .map_err(|e| format!("{e} (a duration such as 30d, or off)"))
}
