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
pub(crate) const PREFIX: &str = "tickwire:";

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

/// Seats admitted and not yet reported, per instance at most: past it the oldest are dropped
/// and their reservations simply expire (the room looks fuller until then, never emptier).
const MAX_ADMITTED: usize = 4096;

/// Reserves one seat, atomically: the fullest matchmade room of the game with space, counting
/// its players (from its instance's last heartbeat) and its live reservations; else a new
/// room (ARGV 6–8), registered at once so that concurrent matchmakers fill it rather than
/// opening their own. Returns the room's id, instance and URL.
///
/// ARGV: prefix, game, now (ms), the reservation's expiry (ms), its id, the new room's id,
/// instance, capacity and URL, and the new room's TTL (ms).
const RESERVE_SEAT: &str = r"
local p, game, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local open = p .. 'open:' .. game
local best, best_taken = nil, -1
for _, id in ipairs(redis.call('SMEMBERS', open)) do
  local r = redis.call('HMGET', p .. 'room:' .. id, 'capacity', 'players')
  if not r[1] then
    redis.call('SREM', open, id)
  else
    local seats = p .. 'seats:' .. id
    redis.call('ZREMRANGEBYSCORE', seats, '-inf', now)
    local taken = tonumber(r[2]) + redis.call('ZCARD', seats)
    if taken < tonumber(r[1]) and taken > best_taken then
      best, best_taken = id, taken
    end
  end
end
if not best then
  best = ARGV[6]
  local room = p .. 'room:' .. best
  redis.call('HSET', room, 'instance', ARGV[7], 'game', game, 'capacity', ARGV[8],
    'players', 0, 'url', ARGV[9])
  redis.call('PEXPIRE', room, ARGV[10])
  redis.call('SADD', open, best)
end
local seats = p .. 'seats:' .. best
redis.call('ZADD', seats, ARGV[4], ARGV[5])
redis.call('PEXPIRE', seats, ARGV[10])
local room = redis.call('HMGET', p .. 'room:' .. best, 'instance', 'url')
return {best, room[1], room[2]}
";

/// What a seat token (`?seat=` on the join, from `GET /api/matchmake`) says. It has no `sub`,
/// so it is never taken for a player's token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SeatClaims {
    /// Always `"seat"`.
    pub kind: String,
    /// The reservation's id.
    pub seat: String,
    /// The room.
    pub room: String,
    /// The game the room plays.
    pub game: String,
    /// The instance that holds (or is to open) the room.
    pub instance: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Where the matchmaker sends a player.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The room.
    pub room: String,
    /// The WebSocket URL of the instance that holds it.
    pub url: String,
    /// That instance.
    pub instance: String,
    /// The seat token to join with (`?room=…&seat=…`); none for a named room.
    pub seat: Option<String>,
}

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
    /// Players per room (`--room-capacity`).
    #[serde(default)]
    pub room_capacity: usize,
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
    /// How long a reservation holds a seat (`--seat-ttl`).
    seat_ttl: Duration,
    redis: ConnectionManager,
    /// For pub/sub connections (`messaging::subscriber`).
    client: redis::Client,
    metrics: Arc<Metrics>,
    /// Whether the last exchange with Redis succeeded.
    up: AtomicBool,
    /// Seats admitted to this instance's rooms since the last heartbeat: (room, seat id).
    admitted: Mutex<Vec<(String, String)>>,
    reserve: redis::Script,
    /// The other instances' records as last read, and when.
    cache: Mutex<Option<(Instant, Arc<Vec<InstanceRecord>>)>>,
    /// Wakes the heartbeat for a beat now (a room just taken over).
    beat_now: tokio::sync::Notify,
    /// The public URLs of every instance seen in the directory (the newest
    /// [`MAX_REMEMBERED_MEMBERS`]): pages they served stay open after they leave (a rolling
    /// restart sends their players here), so their origins stay trusted.
    seen: Mutex<std::collections::VecDeque<String>>,
}

/// How many instances' URLs an instance remembers after they leave.
const MAX_REMEMBERED_MEMBERS: usize = 256;

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
    // A host name, an IPv4 or a bracketed IPv6 address, and a port: nothing that could end a
    // header value or a CSP source list it is copied into.
    if authority.is_empty()
        || !authority.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
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
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .context("preparing the Redis connection")?;
        Ok(Cluster {
            id: random_hex(8),
            url,
            ws_url,
            ttl: config.presence_ttl,
            seat_ttl: config.seat_ttl,
            redis,
            client,
            metrics,
            up: AtomicBool::new(false),
            admitted: Mutex::new(Vec::new()),
            reserve: redis::Script::new(RESERVE_SEAT),
            cache: Mutex::new(None),
            beat_now: tokio::sync::Notify::new(),
            seen: Mutex::new(std::collections::VecDeque::new()),
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

    /// A handle on the Redis connection (cheap: it is shared).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Has the heartbeat beat now rather than at its next period (a room was just taken over:
    /// the directory and matchmaking should show it here at once).
    pub fn beat_now(&self) {
        self.beat_now.notify_one();
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
            room_capacity: state.config.room_capacity,
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

    /// The public base URLs of this instance and of the others as last read: a page served by
    /// any of them may open sessions here (the matchmaker sends players across instances).
    #[must_use]
    pub fn member_urls(&self) -> Vec<String> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let others = cache.as_ref().map(|(_, records)| records.iter().map(|r| r.url.clone()));
        std::iter::once(self.url.clone()).chain(others.into_iter().flatten()).collect()
    }

    /// [`Cluster::member_urls`] and every instance seen since this one started (pages served
    /// by an instance that has left may still open sessions here: its players were sent here
    /// when it stopped).
    #[must_use]
    pub fn trusted_urls(&self) -> Vec<String> {
        let mut urls = self.member_urls();
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        urls.extend(seen.iter().filter(|u| !urls.contains(u)).cloned().collect::<Vec<_>>());
        urls
    }

    /// The WebSocket origins (`ws://host:port`, `wss://…`) of the other instances as last read,
    /// for the page's Content Security Policy. A record whose URL does not parse is left out.
    #[must_use]
    pub fn member_ws_origins(&self) -> Vec<String> {
        self.member_urls()
            .iter()
            .skip(1)
            .filter_map(|url| public_urls(url).ok())
            .filter_map(|(_, ws)| ws.strip_suffix("/ws").map(str::to_owned))
            .collect()
    }

    /// Publishes `payload` on `channel`; returns how many instances received it.
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn publish(&self, channel: &str, payload: &str) -> redis::RedisResult<usize> {
        let mut conn = self.redis.clone();
        let result = conn.publish(channel, payload).await;
        self.note(&result);
        result
    }

    /// A new pub/sub connection (each subscriber holds its own).
    ///
    /// # Errors
    ///
    /// Redis cannot be reached.
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        tokio::time::timeout(REDIS_TIMEOUT, self.client.get_async_pubsub()).await.unwrap_or_else(
            |_| Err(redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))),
        )
    }

    /// Where the player `subject` plays on some instance, as its last heartbeat said.
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn whereabouts(
        &self,
        subject: &str,
    ) -> redis::RedisResult<Option<crate::messaging::Whereabouts>> {
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<Option<Vec<u8>>> =
            conn.get(format!("{PREFIX}player:{subject}")).await;
        self.note(&result);
        Ok(result?
            .filter(|json| json.len() <= MAX_RECORD_BYTES)
            .and_then(|json| serde_json::from_slice(&json).ok()))
    }

    /// Counts a seat as taken in its room: the next heartbeat reports the room's players with
    /// it and drops its reservation in the same transaction, so the seat is never counted
    /// zero times.
    pub fn admitted(&self, room: &str, seat: &str) {
        let mut admitted = self.admitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if admitted.len() >= MAX_ADMITTED {
            admitted.remove(0);
        }
        admitted.push((room.to_owned(), seat.to_owned()));
    }

    /// The seat a join carries, if it is valid for a room of this instance: its claims.
    ///
    /// # Errors
    ///
    /// Why the seat cannot be used here (forged, expired, another instance's).
    pub fn check_seat(
        &self,
        keys: &crate::auth::JwtKeys,
        token: &str,
    ) -> Result<SeatClaims, String> {
        let claims: SeatClaims =
            keys.verify_other(token).map_err(|e| format!("seat: {e}; matchmake again"))?;
        if claims.kind != "seat" {
            return Err("seat: not a seat token".to_owned());
        }
        if claims.instance != self.id {
            return Err(format!(
                "seat: for instance {}, not this one; matchmake again",
                claims.instance
            ));
        }
        Ok(claims)
    }

    /// The instance a new room should go to: of those with room for another room, the one
    /// with the fewest players, then the fewest rooms.
    fn least_loaded(&self, state: &AppState, others: &[InstanceRecord]) -> InstanceRecord {
        let own = self.record(state);
        others
            .iter()
            .chain(std::iter::once(&own))
            .filter(|r| r.rooms.len() < r.max_rooms && r.room_capacity > 0)
            .min_by_key(|r| (r.players, r.rooms.len(), r.id.clone()))
            .cloned()
            // Every instance is at --max-rooms: this one, whose join will say so.
            .unwrap_or(own)
    }

    /// Places a player in the cluster: a seat in the fullest matchmade room of `game` with
    /// space on any instance, else in a new room on the least-loaded instance.
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn matchmake(&self, state: &AppState, game: &str) -> redis::RedisResult<Placement> {
        let others = self.others().await?;
        let target = self.least_loaded(state, &others);
        let seat = random_hex(8);
        let now = unix_ms();
        let new_room = format!("mm-{}", random_hex(6));
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<(String, String, String)> = self
            .reserve
            .arg(PREFIX)
            .arg(game)
            .arg(now)
            .arg(now + self.seat_ttl.as_millis() as u64)
            .arg(&seat)
            .arg(&new_room)
            .arg(&target.id)
            .arg(target.room_capacity.max(1))
            .arg(&target.ws_url)
            .arg(self.seat_ttl.as_millis() as u64 + self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        self.note(&result);
        let (room, instance, url) = result?;
        let claims = SeatClaims {
            kind: "seat".to_owned(),
            seat,
            room: room.clone(),
            game: game.to_owned(),
            instance: instance.clone(),
            exp: now / 1000 + self.seat_ttl.as_secs().max(1),
        };
        Ok(Placement { room, url, instance, seat: Some(state.keys.sign_other(&claims)) })
    }

    /// Where the named room `room` is: the instance holding it, else the least-loaded one,
    /// which then holds the name for the seat TTL (set once, so two players naming a new room
    /// at the same moment through two instances meet on one).
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub async fn locate_named(
        &self,
        state: &AppState,
        room: &str,
    ) -> redis::RedisResult<Placement> {
        let others = self.others().await?;
        let target = self.least_loaded(state, &others);
        let key = format!("{PREFIX}named:{room}");
        let mut conn = self.redis.clone();
        let result: redis::RedisResult<((), String)> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(&target.id)
            .arg("NX")
            .arg("PX")
            .arg(self.seat_ttl.as_millis() as u64)
            .cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await;
        self.note(&result);
        let ((), holder) = result?;
        let url = if holder == self.id {
            self.ws_url.clone()
        } else if let Some(r) = others.iter().find(|r| r.id == holder) {
            r.ws_url.clone()
        } else {
            // Its holder has left the directory: the name is free again once its key expires.
            target.ws_url.clone()
        };
        Ok(Placement { room: room.to_owned(), url, instance: holder, seat: None })
    }

    /// Writes this instance's record with its TTL, indexes it, drops index entries long
    /// past, writes each room's entry for matchmaking (players, with the seats admitted
    /// since the last beat taken off its reservations in the same transaction) and each
    /// named room's holder, and returns how many instances the index holds.
    async fn beat(
        &self,
        record: &InstanceRecord,
        admitted: &[(String, String)],
        players: &[(String, String)],
    ) -> redis::RedisResult<usize> {
        let json = serde_json::to_string(record).unwrap_or_default();
        let ttl_ms = self.ttl.as_millis().max(1) as u64;
        let now = unix_ms();
        let mut conn = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (subject, room) in players {
            let here = crate::messaging::Whereabouts {
                room: room.clone(),
                instance: Some(self.id.clone()),
                url: Some(self.ws_url.clone()),
            };
            pipe.cmd("SET")
                .arg(format!("{PREFIX}player:{subject}"))
                .arg(serde_json::to_string(&here).unwrap_or_default())
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
        }
        for room in &record.rooms {
            if room.named {
                pipe.cmd("SET")
                    .arg(format!("{PREFIX}named:{}", room.id))
                    .arg(&self.id)
                    .arg("PX")
                    .arg(ttl_ms)
                    .ignore();
                continue;
            }
            let key = format!("{PREFIX}room:{}", room.id);
            let seats = format!("{PREFIX}seats:{}", room.id);
            pipe.cmd("HSET")
                .arg(&key)
                .arg("instance")
                .arg(&self.id)
                .arg("game")
                .arg(&room.game)
                .arg("capacity")
                .arg(room.capacity)
                .arg("players")
                .arg(room.players)
                .arg("url")
                .arg(&self.ws_url)
                .ignore();
            pipe.pexpire(&key, ttl_ms as i64).ignore();
            pipe.sadd(format!("{PREFIX}open:{}", room.game), &room.id).ignore();
            let taken: Vec<&str> =
                admitted.iter().filter(|(r, _)| *r == room.id).map(|(_, s)| s.as_str()).collect();
            if !taken.is_empty() {
                pipe.zrem(&seats, taken).ignore();
            }
            pipe.pexpire(&seats, (ttl_ms + self.seat_ttl.as_millis() as u64) as i64).ignore();
        }
        let (_, _, _, live): ((), (), (), usize) = pipe
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

    /// Removes this instance and its rooms from the directory and from matchmaking (on
    /// shutdown).
    async fn leave(&self, rooms: &[RoomInfo]) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().del(instance_key(&self.id)).ignore().zrem(index_key(), &self.id).ignore();
        for room in rooms {
            let key = if room.named { "named" } else { "room" };
            pipe.del(format!("{PREFIX}{key}:{}", room.id)).ignore();
        }
        pipe.query_async(&mut conn).await
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
        {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for r in others.iter() {
                if !seen.contains(&r.url) {
                    if seen.len() == MAX_REMEMBERED_MEMBERS {
                        seen.pop_front();
                    }
                    seen.push_back(r.url.clone());
                }
            }
        }
        *cache() = Some((Instant::now(), others.clone()));
        Ok(others)
    }

    /// Every live instance's record, this one's included, read now (no cache).
    ///
    /// # Errors
    ///
    /// Redis did not answer.
    pub(crate) async fn read_directory(&self) -> redis::RedisResult<Vec<InstanceRecord>> {
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
        // The admitted seats first, then the rooms' players: a seat admitted in between is
        // counted in both (for one beat), never in neither.
        let admitted = std::mem::take(
            &mut *cluster.admitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let record = cluster.record(&state);
        let players = state.messaging.everyone();
        let result = cluster.beat(&record, &admitted, &players).await;
        if result.is_err() {
            // Reported with the next beat that gets through.
            let mut pending =
                cluster.admitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut merged = admitted;
            merged.append(&mut pending);
            merged.truncate(MAX_ADMITTED);
            *pending = merged;
        }
        cluster.note(&result);
        let wait = match result {
            Ok(live) => {
                // Keeps the other instances' URLs fresh (origins their pages send).
                let _ = cluster.others().await;
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
            () = cluster.beat_now.notified() => {}
        }
    }
    let rooms = state.rooms.list();
    match tokio::time::timeout(REDIS_TIMEOUT, cluster.leave(&rooms)).await {
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
            "http://x;y",
            "http://x,y",
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
            seat_ttl: crate::config::DEFAULT_SEAT_TTL,
        };
        let err = check(&config).unwrap_err().to_string();
        assert!(err.contains("not a Redis URL"), "{err}");
    }
}
