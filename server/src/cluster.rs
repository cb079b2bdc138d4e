//! A cluster of instances on Redis (`tickwire serve --redis URL`): presence and the room
//! directory.
//!
//! Each instance writes one record, `tickwire:instance:{id}`: its id, its public URL, the
//! `/ws` URL players join it at, its load and its rooms. The record expires after the
//! presence TTL and is rewritten every third of it (the heartbeat), so an instance that dies
//! leaves the directory within the TTL; one that shuts down deletes it at once. The sorted set
//! `tickwire:instances` indexes the records (score: when the record expires, milliseconds
//! since the epoch by the writer's clock). Readers take the ids whose score is not past and
//! read their records; an id whose record has expired is skipped, so a clock that is off only
//! delays the index's cleanup, never shows a dead instance.
//!
//! Redis is the directory, not the game: rooms run whether or not Redis answers. While it does
//! not, the heartbeat retries with backoff, `tickwire_redis_up` is 0, the log says so once,
//! and `GET /api/rooms` answers with this instance's rooms and says the cluster is unavailable.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::auth::random_hex;
use crate::config::ClusterConfig;
use crate::metrics::Metrics;
use crate::rooms::RoomInfo;
use crate::state::AppState;

/// Every key the cluster writes starts with this (one Redis database can hold one cluster;
/// give others a database of their own: `redis://host:port/2`).
const PREFIX: &str = "tickwire:";

/// How long a Redis command may take before it counts as failed: a Redis that hangs must not
/// hold `GET /api/rooms` or the heartbeat.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A record larger than this is not read (a directory entry is a few KiB): bounds what a
/// corrupt or hostile key can make an instance allocate per request.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// How long a read of the directory is reused.
const DIRECTORY_CACHE: Duration = Duration::from_millis(200);

/// What an instance publishes about itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// The instance's id (random, made at start).
    pub id: String,
    /// Its public base URL (`http://host:port`).
    pub url: String,
    /// The WebSocket URL players join it at (`ws://host:port/ws`).
    pub ws_url: String,
    /// Human players in its rooms.
    pub players: usize,
    /// Rooms it may hold (`--max-rooms`).
    pub max_rooms: usize,
    /// Its rooms (each without `instance` and `url`: they are the record's).
    pub rooms: Vec<RoomInfo>,
}

/// This instance's membership: its identity, its connection to Redis, and what it knows of
/// Redis's health.
pub struct Cluster {
    id: String,
    url: String,
    ws_url: String,
    ttl: Duration,
    redis: ConnectionManager,
    metrics: Arc<Metrics>,
    /// Whether the last exchange with Redis succeeded.
    up: AtomicBool,
    /// The other instances' records as last read, and when.
    cache: Mutex<Option<(Instant, Arc<Vec<InstanceRecord>>)>>,
}

/// The public base URL and the `/ws` URL of `public` (`http://host:port`, `https://…`,
/// nothing after the authority but an optional `/`).
///
/// # Errors
///
/// Another scheme, no host, or a path, query or fragment.
pub fn public_urls(public: &str) -> anyhow::Result<(String, String)> {
    let (ws, rest) = if let Some(rest) = public.strip_prefix("http://") {
        ("ws", rest)
    } else if let Some(rest) = public.strip_prefix("https://") {
        ("wss", rest)
    } else {
        bail!("--public-url {public:?} must start with http:// or https://");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || authority.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!(
            "--public-url {public:?} must be a scheme and host[:port] only, like \
             https://eu1.example.com:8443"
        );
    }
    let http = if ws == "ws" { "http" } else { "https" };
    Ok((format!("{http}://{authority}"), format!("{ws}://{authority}/ws")))
}

/// Checks the cluster options that can be checked before starting: the Redis URL's form and
/// the public URL.
///
/// # Errors
///
/// A URL that cannot be used, saying which.
pub fn check(config: &ClusterConfig) -> anyhow::Result<()> {
    redis::Client::open(config.redis_url.as_str())
        .map_err(|e| anyhow::anyhow!("--redis {:?} is not a Redis URL: {e}", config.redis_url))?;
    if let Some(public) = &config.public_url {
        public_urls(public)?;
    }
    Ok(())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn instance_key(id: &str) -> String {
    format!("{PREFIX}instance:{id}")
}

fn index_key() -> String {
    format!("{PREFIX}instances")
}

impl Cluster {
    /// Prepares membership: the Redis client (connected lazily: an instance starts whether
    /// or not Redis answers yet) and this instance's URLs. `bound` is the address the server
    /// listens on, used when no `--public-url` was given; `tls` whether it serves HTTPS.
    ///
    /// # Errors
    ///
    /// A Redis URL that does not parse, or no usable public URL.
    pub fn new(
        config: &ClusterConfig,
        bound: std::net::SocketAddr,
        tls: bool,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Cluster> {
        check(config)?;
        let public = match &config.public_url {
            Some(url) => url.clone(),
            None if bound.ip().is_unspecified() => bail!(
                "--redis needs --public-url when the server listens on {bound}: other \
                 instances and players must be told an address that reaches this one"
            ),
            None => format!("{}://{bound}", if tls { "https" } else { "http" }),
        };
        let (url, ws_url) = public_urls(&public)?;
        let client = redis::Client::open(config.redis_url.as_str())
            .with_context(|| format!("--redis {:?}", config.redis_url))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_max_delay(MAX_BACKOFF)
            .set_number_of_retries(2);
        let redis = ConnectionManager::new_lazy_with_config(client, manager)
            .context("preparing the Redis connection")?;
        Ok(Cluster {
            id: random_hex(8),
            url,
            ws_url,
            ttl: config.presence_ttl,
            redis,
            metrics,
            up: AtomicBool::new(false),
            cache: Mutex::new(None),
        })
    }

    /// This instance's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `/ws` URL players join this instance at.
    #[must_use]
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// This instance's record now.
    fn record(&self, state: &AppState) -> InstanceRecord {
        let rooms = state.rooms.list();
        InstanceRecord {
            id: self.id.clone(),
            url: self.url.clone(),
            ws_url: self.ws_url.clone(),
            players: rooms.iter().map(|r| r.players).sum(),
            max_rooms: state.config.max_rooms,
            rooms,
        }
    }

    /// Counts the outcome of a Redis exchange in the metrics, and logs a change of health once.
    fn note<T>(&self, result: &redis::RedisResult<T>) {
        let up = result.is_ok();
        let was_up = self.up.swap(up, Relaxed);
        self.metrics.redis_up.set(i64::from(up));
        match result {
            Ok(_) if !was_up => {
                tracing::info!(instance = %self.id, url = %self.ws_url, "Redis reachable: the instance is in the cluster's directory");
            }
            Ok(_) => {}
            Err(e) => {
                self.metrics.redis_errors.fetch_add(1, Relaxed);
                if was_up {
                    tracing::warn!(instance = %self.id, error = %e, "Redis unreachable: rooms keep running; retrying with backoff");
                }
            }
        }
    }

    /// Writes this instance's record with its TTL, indexes it, drops index entries long
    /// past, and returns how many instances the index holds.
    async fn beat(&self, record: &InstanceRecord) -> redis::RedisResult<usize> {
        let json = serde_json::to_string(record).unwrap_or_default();
        let ttl_ms = self.ttl.as_millis().max(1) as u64;
        let now = unix_ms();
        let mut conn = self.redis.clone();
        let (_, _, _, live): ((), (), (), usize) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(instance_key(&self.id))
            .arg(json)
            .arg("PX")
            .arg(ttl_ms)
            .cmd("ZADD")
            .arg(index_key())
            .arg(now + ttl_ms)
            .arg(&self.id)
            // Entries a whole TTL past their expiry: their records are long gone.
            .cmd("ZREMRANGEBYSCORE")
            .arg(index_key())
            .arg("-inf")
            .arg(format!("({}", now.saturating_sub(ttl_ms)))
            .cmd("ZCARD")
            .arg(index_key())
            .query_async(&mut conn)
            .await?;
        Ok(live)
    }

    /// Removes this instance from the directory (on shutdown).
    async fn leave(&self) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        redis::pipe()
            .atomic()
            .del(instance_key(&self.id))
            .zrem(index_key(), &self.id)
            .query_async(&mut conn)
            .await
    }

    /// Every other live instance's record, read from Redis at most every
    /// [`DIRECTORY_CACHE`] (a flood of `GET /api/rooms` costs Redis little).
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn others(&self) -> redis::RedisResult<Arc<Vec<InstanceRecord>>> {
        let cache = || self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, records)) = &*cache()
            && at.elapsed() < DIRECTORY_CACHE
        {
            return Ok(records.clone());
        }
        let result = self.read_directory().await;
        self.note(&result);
        let others: Arc<Vec<InstanceRecord>> =
            Arc::new(result?.into_iter().filter(|r| r.id != self.id).collect());
        *cache() = Some((Instant::now(), others.clone()));
        Ok(others)
    }

    async fn read_directory(&self) -> redis::RedisResult<Vec<InstanceRecord>> {
        let mut conn = self.redis.clone();
        let ids: Vec<String> = conn.zrangebyscore(index_key(), unix_ms(), "+inf").await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| instance_key(id)).collect();
        let records: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let mut out: Vec<InstanceRecord> = records
            .into_iter()
            .flatten()
            .filter(|json| json.len() <= MAX_RECORD_BYTES)
            .filter_map(|json| match serde_json::from_slice(&json) {
                Ok(record) => Some(record),
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable instance record in Redis is skipped");
                    None
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// Keeps this instance in the directory until shutdown, then takes it out: a heartbeat every
/// third of the TTL, and after a failure a retry with growing backoff (at most the heartbeat
/// period).
pub async fn heartbeat(state: Arc<AppState>, cluster: Arc<Cluster>) {
    let period = cluster.ttl / 3;
    let mut backoff = Duration::from_millis(100);
    loop {
        let record = cluster.record(&state);
        let result = cluster.beat(&record).await;
        cluster.note(&result);
        let wait = match result {
            Ok(live) => {
                cluster.metrics.cluster_instances.set(live as i64);
                backoff = Duration::from_millis(100);
                period
            }
            Err(_) => {
                let wait = backoff.min(period);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    match tokio::time::timeout(REDIS_TIMEOUT, cluster.leave()).await {
        Ok(Ok(())) => tracing::info!(instance = %cluster.id, "left the cluster's directory"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not leave the cluster's directory; it expires with the TTL")
        }
        Err(_) => {
            tracing::warn!("Redis did not answer in time; the directory entry expires with the TTL")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_take_a_scheme_and_an_authority_only() {
        assert_eq!(
            public_urls("http://10.0.0.7:8080").unwrap(),
            ("http://10.0.0.7:8080".to_owned(), "ws://10.0.0.7:8080/ws".to_owned())
        );
        assert_eq!(
            public_urls("https://eu1.example.com/").unwrap(),
            ("https://eu1.example.com".to_owned(), "wss://eu1.example.com/ws".to_owned())
        );
        for bad in [
            "ftp://x",
            "eu1.example.com",
            "http://",
            "http://x/path",
            "http://x?q",
            "http://a b",
            "http://u@x",
        ] {
            assert!(public_urls(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_malformed_redis_url_is_refused_before_starting() {
        let config = ClusterConfig {
            redis_url: "not a url".into(),
            public_url: None,
            presence_ttl: Duration::from_secs(10),
        };
        let err = check(&config).unwrap_err().to_string();
        assert!(err.contains("not a Redis URL"), "{err}");
    }
}
