//! The bots' HTTP side: a guest token from `POST /api/guest` and the tick and latency histograms from
//! `GET /metrics`, over a minimal HTTP/1.1 client (one request per connection, `Connection:
//! close`), so the bots need nothing the server does not already link.

use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Deadline of one HTTP request, connect included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest HTTP response read (the metrics text is a few KiB).
pub const MAX_HTTP_RESPONSE_BYTES: u64 = 1 << 20;

/// Sends `method path` to `host:port` and returns the status and body.
///
/// # Errors
///
/// When the server cannot be reached, times out, or does not answer HTTP.
pub async fn request(
    target: &HttpTarget,
    method: &str,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let HttpTarget { host, port, tls } = target;
    let (host, port) = (host.as_str(), *port);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let work = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .with_context(|| format!("cannot reach the server at {host}:{port}"))?;
        let mut stream: Box<dyn crate::link::ByteStream> = match tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .with_context(|| format!("{host} is not a TLS server name"))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .with_context(|| {
                        format!("TLS with {host}:{port} failed (--ca or --insecure?)")
                    })?;
                Box::new(tls)
            }
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.context("sending the HTTP request")?;
        let mut buf = Vec::new();
        (&mut stream)
            .take(MAX_HTTP_RESPONSE_BYTES)
            .read_to_end(&mut buf)
            .await
            .context("reading the HTTP response")?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| text.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .with_context(|| format!("{host}:{port} did not answer HTTP to {method} {path}"))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    };
    match tokio::time::timeout(HTTP_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => bail!("{method} {scheme}://{host}:{port}{path} timed out after {HTTP_TIMEOUT:?}"),
    }
}

/// What differs between the server's protocol and game `game` (`GET /api/schema`) and these
/// bots', one line each; empty when nothing does, or when the server does not describe
/// itself (an older build).
///
/// # Errors
///
/// When the server is unreachable or its description does not parse.
pub async fn schema_differences(target: &HttpTarget, game: &str) -> anyhow::Result<Vec<String>> {
    let (status, body) = request(target, "GET", "/api/schema").await?;
    if status != 200 {
        return Ok(Vec::new());
    }
    let server: tickwire_shared::schema::Schema =
        serde_json::from_str(&body).context("reading the server's GET /api/schema")?;
    Ok(tickwire_shared::schema::Schema::current().diff(&server, game))
}

/// A guest token from `POST /api/guest`.
///
/// # Errors
///
/// When the server is unreachable or refuses (guest tokens disabled: pass `--token`).
pub async fn guest_token(target: &HttpTarget) -> anyhow::Result<String> {
    let (status, body) = request(target, "POST", "/api/guest").await?;
    if status != 200 {
        bail!("POST /api/guest answered {status} ({}); pass a token with --token", body.trim());
    }
    let json: serde_json::Value =
        serde_json::from_str(&body).context("POST /api/guest did not return JSON")?;
    json.get("token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("POST /api/guest returned no token")
}

/// Where `GET /api/matchmake` sends a player.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Place {
    /// The room (`None`: the server matchmakes at the join).
    pub room: Option<String>,
    /// The instance's WebSocket URL (`ws://…/ws`), or a path on this server (`/ws`).
    pub url: String,
    /// The seat to join with, in a cluster.
    pub seat: Option<String>,
}

/// Where to join a room of `game`, from `GET /api/matchmake`.
///
/// # Errors
///
/// When the server is unreachable or refuses.
pub async fn matchmake(target: &HttpTarget, game: &str) -> anyhow::Result<Place> {
    let path = format!("/api/matchmake?game={}", tickwire_shared::join::percent_encode(game));
    let (status, body) = request(target, "GET", &path).await?;
    if status != 200 {
        bail!("GET {path} answered {status} ({})", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("GET {path} did not return a placement"))
}

/// One Prometheus histogram, as scraped: `(upper bound in seconds, cumulative count)`,
/// ascending; the last bound is `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

impl Buckets {
    /// Reads the `{name}_bucket{le="…"}` lines of the Prometheus text (empty when absent).
    #[must_use]
    pub fn parse(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket{{");
        let mut buckets = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else { continue };
            let Some(le) = rest.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
                continue;
            };
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            let count = rest.rsplit(' ').next().and_then(|c| c.trim().parse::<f64>().ok());
            if let (false, Some(count)) = (bound.is_nan(), count) {
                buckets.push((bound, count as u64));
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Buckets(buckets)
    }

    /// `self - earlier`, bucket by bucket: the observations between two scrapes.
    #[must_use]
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(bound, count)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(b, _)| b.total_cmp(&bound).is_eq())
                        .map_or(0, |&(_, c)| c);
                    (bound, count.saturating_sub(before))
                })
                .collect(),
        )
    }

    /// Observations (the `+Inf` bucket's count).
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.last().map_or(0, |&(_, c)| c)
    }

    /// The upper bound of the bucket holding the `q` quantile (seconds); `None` with no
    /// observations or when it falls in the `+Inf` bucket.
    #[must_use]
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        self.0.iter().find(|&&(_, c)| c >= rank).map(|&(b, _)| b).filter(|b| b.is_finite())
    }
}

/// The server's tick-duration and input-latency histograms and overrun counter, as scraped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickMetrics {
    /// `tickwire_tick_duration_seconds`.
    pub tick: Buckets,
    /// `tickwire_input_to_snapshot_seconds` (empty from a server without it).
    pub input_to_snapshot: Buckets,
    /// `tickwire_tick_overruns_total`.
    pub overruns: u64,
    /// `tickwire_process_cpu_seconds_total` (`None` from a server without it).
    pub cpu_seconds: Option<f64>,
}

impl TickMetrics {
    /// Reads the histograms and `tickwire_tick_overruns_total` from the Prometheus text.
    ///
    /// # Errors
    ///
    /// When the text has no tick-duration buckets.
    pub fn parse(text: &str) -> anyhow::Result<TickMetrics> {
        let tick = Buckets::parse(text, "tickwire_tick_duration_seconds");
        if tick.0.is_empty() {
            bail!("no tickwire_tick_duration_seconds buckets in /metrics");
        }
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Ok(TickMetrics {
            tick,
            input_to_snapshot: Buckets::parse(text, "tickwire_input_to_snapshot_seconds"),
            overruns: value("tickwire_tick_overruns_total").map_or(0, |v| v as u64),
            cpu_seconds: value("tickwire_process_cpu_seconds_total"),
        })
    }

    /// `self - earlier`: the ticks and inputs of the time between two scrapes.
    #[must_use]
    pub fn since(&self, earlier: &TickMetrics) -> TickMetrics {
        TickMetrics {
            tick: self.tick.since(&earlier.tick),
            input_to_snapshot: self.input_to_snapshot.since(&earlier.input_to_snapshot),
            overruns: self.overruns.saturating_sub(earlier.overruns),
            cpu_seconds: self
                .cpu_seconds
                .zip(earlier.cpu_seconds)
                .map(|(now, before)| (now - before).max(0.0)),
        }
    }
}

/// Where the server's HTTP API is: host, port, and TLS (HTTPS) when it has any.
#[derive(Clone)]
pub struct HttpTarget {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The TLS client configuration for HTTPS; `None` for plain HTTP.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The WebTransport endpoint `GET /api/transport` offers: its port and, for a development
/// certificate, its SHA-256.
///
/// # Errors
///
/// When the server is unreachable, answers no JSON, or has no WebTransport endpoint.
pub async fn webtransport_endpoint(target: &HttpTarget) -> anyhow::Result<(u16, Option<[u8; 32]>)> {
    let (status, body) = request(target, "GET", "/api/transport").await?;
    if status != 200 {
        bail!("GET /api/transport answered {status}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&body).context("GET /api/transport did not return JSON")?;
    let wt = &json["webtransport"];
    if wt.is_null() {
        bail!("the server offers no WebTransport (start it with --dev-cert, TLS or --quic-bind)");
    }
    let port = wt["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .context("GET /api/transport gave no WebTransport port")?;
    let hash = match wt["cert_sha256"].as_str() {
        None => None,
        Some(hex) => Some(parse_sha256(hex).context("a malformed cert_sha256")?),
    };
    Ok((port, hash))
}

/// 64 hex digits as 32 bytes.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Scrapes `GET /metrics`.
///
/// # Errors
///
/// When the server is unreachable or the text has no tick histogram.
pub async fn tick_metrics(target: &HttpTarget) -> anyhow::Result<TickMetrics> {
    let (status, body) = request(target, "GET", "/metrics").await?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    TickMetrics::parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE tickwire_tick_duration_seconds histogram
tickwire_tick_duration_seconds_bucket{le=\"0.0005\"} 10
tickwire_tick_duration_seconds_bucket{le=\"0.001\"} 90
tickwire_tick_duration_seconds_bucket{le=\"0.005\"} 99
tickwire_tick_duration_seconds_bucket{le=\"+Inf\"} 100
tickwire_tick_duration_seconds_sum 0.05
tickwire_tick_duration_seconds_count 100
tickwire_tick_overruns_total 3
tickwire_process_cpu_seconds_total 12.5
tickwire_input_to_snapshot_seconds_bucket{le=\"0.0167\"} 1
tickwire_input_to_snapshot_seconds_bucket{le=\"0.0333\"} 2
tickwire_input_to_snapshot_seconds_bucket{le=\"+Inf\"} 2
";

    #[test]
    fn quantiles_are_bucket_bounds() {
        let m = TickMetrics::parse(TEXT).unwrap();
        assert_eq!(m.tick.count(), 100);
        assert_eq!(m.overruns, 3);
        assert_eq!(m.cpu_seconds, Some(12.5));
        assert_eq!(m.tick.quantile_upper_bound(0.5), Some(0.001));
        assert_eq!(m.tick.quantile_upper_bound(0.99), Some(0.005));
        assert_eq!(m.tick.quantile_upper_bound(1.0), None);
        assert_eq!(m.input_to_snapshot.count(), 2);
        assert_eq!(m.input_to_snapshot.quantile_upper_bound(0.5), Some(0.0167));
        assert_eq!(m.input_to_snapshot.quantile_upper_bound(0.99), Some(0.0333));
        let earlier = TickMetrics {
            tick: Buckets(vec![(0.0005, 10), (0.001, 10)]),
            input_to_snapshot: Buckets::default(),
            overruns: 1,
            cpu_seconds: Some(2.25),
        };
        let d = m.since(&earlier);
        assert_eq!(d.cpu_seconds, Some(10.25));
        // A server without the metric on either side: unknown, not zero.
        let old = TickMetrics { cpu_seconds: None, ..earlier.clone() };
        assert_eq!(m.since(&old).cpu_seconds, None);
        assert_eq!(d.tick.0[0], (0.0005, 0));
        assert_eq!(d.tick.0[1], (0.001, 80));
        assert_eq!(d.input_to_snapshot.count(), 2);
        assert_eq!(d.overruns, 2);
        assert!(TickMetrics::parse("nothing here").is_err());
    }
}
