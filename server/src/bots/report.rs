//! The bots' JSON report and the human summary, built from every bot's [`BotResult`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::BotsConfig;
use super::driver::{BotEnd, BotResult};
use super::scrape::TickMetrics;
use tickwire_shared::client::CorrectionCause;
use tickwire_shared::conditioner::{ConditionerSpec, ConditionerStats};

/// Version of the report's layout; bumped when a field changes meaning or goes away.
pub const REPORT_SCHEMA: u32 = 2;

/// A bot counts as starved when it received less than this fraction of the expected snapshots.
pub const SNAPSHOT_FRACTION_OK: f64 = 0.9;

/// Bot counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BotCounts {
    /// Bots asked for.
    pub requested: u32,
    /// Bots started before the deadline (the ramp-up may not reach them all).
    pub started: u32,
    /// Handshakes that succeeded.
    pub connected: u32,
    /// Handshakes that failed.
    pub failed: u32,
    /// Bots that ran until the end of the run.
    pub completed: u32,
    /// Bots whose session ended early (closed by the server or broken).
    pub disconnected: u32,
}

/// Sessions that ended before the run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Disconnects {
    /// All of them.
    pub total: u64,
    /// By WebSocket close code (`"none"`: the connection broke without a close frame).
    pub by_code: BTreeMap<String, u64>,
    /// By the `Disconnect` message's reason (`"none"` when the server sent none).
    pub by_reason: BTreeMap<String, u64>,
}

/// Quantiles of a set of samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// Mean, minimum and maximum over bots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean over bots.
    pub mean: f64,
    /// Smallest bot.
    pub min: f64,
    /// Largest bot.
    pub max: f64,
}

/// Snapshot delivery.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// `snapshot_rate` from the `Welcome`.
    pub expected_per_sec: f64,
    /// Snapshots decoded per bot per second of its session.
    pub per_bot_per_sec: Spread,
    /// `per_bot_per_sec / expected_per_sec`.
    pub fraction_of_expected: Spread,
    /// Bots under [`SNAPSHOT_FRACTION_OK`] of the expected rate.
    pub bots_below_90_percent: u64,
    /// Snapshots decoded by all bots.
    pub total: u64,
}

/// Own-player prediction: reconciliation snaps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictionSummary {
    /// Snapshots reconciled.
    pub reconciliations: u64,
    /// Reconciliations that moved the predicted position (a misprediction).
    pub corrections: u64,
    /// Reconciliations after the own player respawned, not counted as corrections.
    pub respawn_snaps: u64,
    /// Mean correction distance, world units.
    pub mean_distance: f64,
    /// 99th percentile of correction distance, world units (over each bot's recent ones).
    pub p99_distance: f64,
    /// Mispredictions: corrections the netcode should not make (late inputs and unexplained
    /// ones; server-only effects and teleports are not).
    #[serde(default)]
    pub mispredictions: u64,
    /// 99th percentile of the mispredictions' distance, world units.
    #[serde(default)]
    pub misprediction_p99_distance: f64,
    /// Every correction by cause (`server_effect`, `late_input`, `teleport`, `unexplained`).
    #[serde(default)]
    pub by_cause: BTreeMap<String, CauseSummary>,
}

/// The corrections of one cause.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CauseSummary {
    /// How many.
    pub count: u64,
    /// 99th percentile of their distance, world units (over each bot's recent ones).
    pub p99_distance: f64,
}

/// What time sync did (all bots): the input clocks' adjustments, and the input ticks the
/// server still ran late.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSyncSummary {
    /// Input-buffer reports received.
    pub reports: u64,
    /// Jumps ahead, and the ticks jumped.
    pub jumps: u64,
    /// Ticks jumped in total.
    pub jumped_ticks: u64,
    /// Pauses, and the ticks paused.
    pub pauses: u64,
    /// Ticks paused in total.
    pub paused_ticks: u64,
    /// Input ticks the server ran without the bot's frame (late, lost, or before the first
    /// adjustment), per the last snapshot of each bot.
    pub inputs_late: u64,
}

/// Remote-entity interpolation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterpolationSummary {
    /// Times render time was held at the extrapolation limit, one snapshot interval past the
    /// newest snapshot (sampled every 16 ms), all bots.
    pub stalls: u64,
    /// Stalls per bot per minute of session.
    pub stalls_per_bot_per_min: f64,
    /// Times render time passed the newest snapshot (a snapshot lost or late) and remote
    /// entities were moved on along their velocity instead of held, all bots. An extrapolation
    /// that reached the limit is also a stall.
    #[serde(default)]
    pub extrapolations: u64,
    /// Render time spent extrapolating, all bots, milliseconds.
    #[serde(default)]
    pub extrapolated_ms: f64,
    /// The delay remote entities were drawn with (how far render time was behind the estimated
    /// server clock), sampled every 16 ms, all bots, milliseconds. Longer than `target_delay_ms`
    /// during a stall and while render time catches up after it.
    #[serde(default)]
    pub delay_ms: Quantiles,
    /// The delay the jitter buffer aimed at, at the same samples, milliseconds.
    #[serde(default)]
    pub target_delay_ms: Quantiles,
}

/// The server's tick duration over this run, from `/metrics` (scraped before and after).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// Ticks run during the run (all rooms).
    pub ticks: u64,
    /// Median tick duration, seconds: the upper bound of its histogram bucket.
    pub tick_p50_seconds: Option<f64>,
    /// 99th percentile tick duration, seconds: the upper bound of its histogram bucket
    /// (`null`: above the largest finite bucket, or no ticks).
    pub tick_p99_seconds: Option<f64>,
    /// Always true: the quantiles are histogram bucket upper bounds, not exact values.
    pub quantiles_are_bucket_upper_bounds: bool,
    /// Ticks longer than the tick period during the run.
    pub overruns: u64,
    /// Inputs applied during the run (observations of the latency below).
    #[serde(default)]
    pub inputs_measured: u64,
    /// Median time from an input's arrival to the first snapshot carrying its effect leaving
    /// the server, seconds (bucket upper bound).
    #[serde(default)]
    pub input_to_snapshot_p50_seconds: Option<f64>,
    /// 99th percentile of the same.
    #[serde(default)]
    pub input_to_snapshot_p99_seconds: Option<f64>,
    /// CPU seconds the server process used between the two scrapes (`null` from a server that
    /// does not export `tickwire_process_cpu_seconds_total`).
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds` per second of bot session (the sum over all bots): the server's cost of
    /// one player, in cores. Everything the server did in that time counts (other clients
    /// too: run the bots against a server of their own).
    #[serde(default)]
    pub cpu_seconds_per_player_second: Option<f64>,
}

/// One bot's line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerBot {
    /// Index (its name is `bot-{index}`).
    pub index: u32,
    /// `completed`, `connect_failed`, `closed` or `broken`.
    pub end: String,
    /// The handshake error, close code or transport error.
    pub detail: Option<String>,
    /// Seconds from `Welcome` to the end.
    pub active_secs: f64,
    /// Snapshots decoded.
    pub snapshots: u64,
    /// Of the expected number.
    pub snapshot_fraction: f64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Decode errors.
    pub decode_errors: u64,
    /// Median round trip, ms.
    pub rtt_p50_ms: Option<f64>,
    /// Times its room moved to another instance and it followed.
    #[serde(default)]
    pub moves: u32,
    /// The entities it was welcomed as, in order (one through any move: `[id]`).
    #[serde(default)]
    pub entities: Vec<u32>,
}

/// One second of the run, all bots together (the HTML report's charts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the first connection, at the end of the interval.
    pub t_secs: f64,
    /// Bots in a session.
    pub live_bots: u64,
    /// Snapshots per second per live bot (`None`: no bot was live).
    pub snapshots_per_bot_per_sec: Option<f64>,
    /// Payload bytes received per second per live bot (`None`: no bot was live).
    pub bytes_per_bot_per_sec: Option<f64>,
    /// Mean round trip of the pongs that came in the interval, ms (`None`: none came).
    pub rtt_ms: Option<f64>,
    /// Corrections of the own player in the interval, all bots, by cause (`server_effect`,
    /// `late_input`, `teleport`, `unexplained`).
    pub corrections: Vec<u64>,
    /// The server's tick time in the interval, p50 and p99 bucket bounds in ms (`None`: no
    /// tick, or `/metrics` could not be read).
    pub tick_p50_ms: Option<f64>,
    /// See `tick_p50_ms`.
    pub tick_p99_ms: Option<f64>,
}

/// Rooms moving to another instance (a rolling restart) under the bots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveSummary {
    /// Bots that followed a move.
    pub bots_moved: u32,
    /// Moves followed, all bots.
    pub moves: u64,
    /// Of the bots that moved, those that were the same entity throughout.
    pub same_entity: u32,
    /// The pause each move made: from the last snapshot before it to the first after, ms.
    pub pause_ms: Quantiles,
}

/// The whole report. It reads back with [`BotsReport::from_json`]; every field is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BotsReport {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The server (without the token).
    pub url: String,
    /// The game played.
    pub game: String,
    /// Behaviour.
    pub behavior: String,
    /// Seed.
    pub seed: u64,
    /// Requested run length, seconds.
    pub duration_secs: f64,
    /// Wall-clock time from the first connection to the last bot's end, seconds.
    pub wall_secs: f64,
    /// Connections per second.
    pub ramp_up_per_sec: f64,
    /// Room, if one was named.
    pub room: Option<String>,
    /// The link conditioner, if any.
    pub conditioner: Option<ConditionerSpec>,
    /// The transport the bots used.
    #[serde(default)]
    pub transport: crate::link::TransportKind,
    /// Bot counts.
    pub bots: BotCounts,
    /// Handshake failures by error.
    pub connect_errors: BTreeMap<String, u64>,
    /// Early session ends.
    pub disconnects: Disconnects,
    /// Round trips (ping/pong, once a second per bot), milliseconds.
    pub rtt_ms: Quantiles,
    /// Input → echo (making an input to the first snapshot acknowledging it), all bots, ms.
    #[serde(default)]
    pub input_echo_ms: Quantiles,
    /// Snapshot delivery.
    pub snapshots: SnapshotSummary,
    /// Payload bytes received per bot per second of session.
    pub bytes_received_per_bot_per_sec: Spread,
    /// Payload bytes sent per bot per second of session.
    pub bytes_sent_per_bot_per_sec: Spread,
    /// Server messages the bots' clients refused.
    pub decode_errors: u64,
    /// Own-player prediction.
    pub prediction: PredictionSummary,
    /// Interpolation.
    pub interpolation: InterpolationSummary,
    /// Time sync.
    #[serde(default)]
    pub time_sync: TimeSyncSummary,
    /// Messages the conditioner dropped (its queues were full).
    pub conditioner_dropped: u64,
    /// Datagrams the conditioner's loss dropped (both ways, all bots).
    #[serde(default)]
    pub conditioner_lost: u64,
    /// Ordered messages the conditioner's loss delayed by a retransmission (both ways, all bots).
    #[serde(default)]
    pub conditioner_retransmitted: u64,
    /// Datagrams the conditioner delivered twice (both ways, all bots).
    #[serde(default)]
    pub conditioner_duplicated: u64,
    /// Datagrams the conditioner held back for later ones to overtake (both ways, all bots).
    #[serde(default)]
    pub conditioner_reordered: u64,
    /// The server's ticks during the run; `null` when `/metrics` could not be read.
    pub server: Option<ServerSummary>,
    /// Why `server` is `null`.
    pub server_error: Option<String>,
    /// Rooms that moved to another instance under the bots (rolling restarts).
    #[serde(default)]
    pub moves: MoveSummary,
    /// Every second of the run (the HTML report draws it).
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    /// One line per started bot.
    pub per_bot: Vec<PerBot>,
}

/// The `q` quantile (nearest rank) of `sorted`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn quantiles(mut samples: Vec<f64>) -> Quantiles {
    samples.sort_by(f64::total_cmp);
    Quantiles {
        samples: samples.len() as u64,
        p50: quantile(&samples, 0.50),
        p95: quantile(&samples, 0.95),
        p99: quantile(&samples, 0.99),
        max: samples.last().copied().unwrap_or(0.0),
    }
}

fn spread(values: &[f64]) -> Spread {
    if values.is_empty() {
        return Spread::default();
    }
    Spread {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Builds the report from the bots' results and the server's tick metrics for the run.
#[must_use]
pub fn build(
    config: &BotsConfig,
    transport: crate::link::TransportKind,
    results: &[BotResult],
    wall: Duration,
    server: Result<TickMetrics, String>,
) -> BotsReport {
    let mut bots = BotCounts {
        requested: config.count,
        started: results.len() as u32,
        ..BotCounts::default()
    };
    let mut connect_errors = BTreeMap::new();
    let mut disconnects = Disconnects::default();
    let mut rtt = Vec::new();
    let mut echo: Vec<f64> = Vec::new();
    let mut conditioner = ConditionerStats::default();
    let (mut snap_rates, mut fractions, mut rx_rates, mut tx_rates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut snapshots = SnapshotSummary::default();
    let mut prediction = PredictionSummary::default();
    let mut correction_sum = 0.0;
    let mut corrections = Vec::new();
    let mut by_cause: Vec<(u64, Vec<f64>)> = vec![(0, Vec::new()); CorrectionCause::ALL.len()];
    let mut stalls = 0u64;
    let (mut extrapolations, mut extrapolated_us) = (0u64, 0u64);
    let mut time_sync = TimeSyncSummary::default();
    let mut delays: Vec<f64> = Vec::new();
    let mut target_delays: Vec<f64> = Vec::new();
    let mut active_total = 0.0;
    let mut decode_errors = 0;
    let mut per_bot = Vec::with_capacity(results.len());
    let mut moves = MoveSummary::default();
    let mut pauses: Vec<f64> = Vec::new();

    for r in results {
        let (end, detail) = match &r.end {
            BotEnd::ConnectFailed(why) => {
                bots.failed += 1;
                *connect_errors.entry(why.clone()).or_insert(0) += 1;
                ("connect_failed", Some(why.clone()))
            }
            BotEnd::Completed => {
                bots.connected += 1;
                bots.completed += 1;
                ("completed", None)
            }
            BotEnd::Closed { code, reason } => {
                bots.connected += 1;
                bots.disconnected += 1;
                disconnects.total += 1;
                *disconnects.by_code.entry(code.to_string()).or_insert(0) += 1;
                let label = reason.map_or("none", |r| r.label());
                *disconnects.by_reason.entry(label.to_owned()).or_insert(0) += 1;
                ("closed", Some(format!("{code} {label}")))
            }
            BotEnd::Broken(why) => {
                bots.connected += 1;
                bots.disconnected += 1;
                disconnects.total += 1;
                *disconnects.by_code.entry("none".to_owned()).or_insert(0) += 1;
                *disconnects.by_reason.entry("none".to_owned()).or_insert(0) += 1;
                ("broken", Some(why.clone()))
            }
        };
        decode_errors += r.decode_errors;
        conditioner += r.conditioner;
        echo.extend(r.input_echo_us.iter().map(|&us| us as f64 / 1e3));
        snapshots.total += r.snapshots;
        let mut bot_rtt: Vec<f64> = r.rtt_us.iter().map(|&us| us as f64 / 1e3).collect();
        bot_rtt.sort_by(f64::total_cmp);
        let mut fraction = 0.0;
        if r.active_secs > 0.0 {
            let rate = r.snapshots as f64 / r.active_secs;
            let expected = f64::from(r.snapshot_rate.max(1));
            snapshots.expected_per_sec = expected;
            fraction = rate / expected;
            snap_rates.push(rate);
            fractions.push(fraction);
            if fraction < SNAPSHOT_FRACTION_OK {
                snapshots.bots_below_90_percent += 1;
            }
            rx_rates.push(r.bytes_received as f64 / r.active_secs);
            tx_rates.push(r.bytes_sent as f64 / r.active_secs);
            active_total += r.active_secs;
        }
        rtt.extend_from_slice(&bot_rtt);
        prediction.reconciliations += r.prediction.reconciliations;
        prediction.corrections += r.prediction.corrections;
        prediction.respawn_snaps += r.respawn_snaps;
        correction_sum += r.prediction.correction_sum;
        corrections.extend(r.prediction.recent.iter().map(|&d| f64::from(d)));
        for (cause, (count, distances)) in CorrectionCause::ALL.iter().zip(&mut by_cause) {
            let stats = r.prediction.cause(*cause);
            *count += stats.count;
            distances.extend(stats.recent.iter().map(|&d| f64::from(d)));
        }
        stalls += r.stalls;
        extrapolations += r.extrapolations;
        extrapolated_us += r.extrapolated_us;
        time_sync.reports += r.time_sync.reports;
        time_sync.jumps += r.time_sync.jumps;
        time_sync.jumped_ticks += r.time_sync.jumped_ticks;
        time_sync.pauses += r.time_sync.pauses;
        time_sync.paused_ticks += r.time_sync.paused_ticks;
        time_sync.inputs_late += u64::from(r.inputs_late);
        delays.extend(r.interp_delay_us.iter().map(|&us| us as f64 / 1e3));
        target_delays.extend(r.interp_target_delay_us.iter().map(|&us| us as f64 / 1e3));
        per_bot.push(PerBot {
            index: r.index,
            end: end.to_owned(),
            detail,
            active_secs: r.active_secs,
            snapshots: r.snapshots,
            snapshot_fraction: fraction,
            bytes_received: r.bytes_received,
            decode_errors: r.decode_errors,
            rtt_p50_ms: (!bot_rtt.is_empty()).then(|| quantile(&bot_rtt, 0.5)),
            moves: r.moves,
            entities: r.entities.clone(),
        });
        if r.moves > 0 {
            moves.bots_moved += 1;
            moves.moves += u64::from(r.moves);
            if r.entities.len() == 1 {
                moves.same_entity += 1;
            }
            pauses.extend_from_slice(&r.move_pauses_ms);
        }
    }
    snapshots.per_bot_per_sec = spread(&snap_rates);
    snapshots.fraction_of_expected = spread(&fractions);
    if prediction.corrections > 0 {
        prediction.mean_distance = correction_sum / prediction.corrections as f64;
    }
    corrections.sort_by(f64::total_cmp);
    prediction.p99_distance = quantile(&corrections, 0.99);
    let mut mispredicted = Vec::new();
    for (cause, (count, mut distances)) in CorrectionCause::ALL.into_iter().zip(by_cause) {
        if cause.is_misprediction() {
            prediction.mispredictions += count;
            mispredicted.extend_from_slice(&distances);
        }
        distances.sort_by(f64::total_cmp);
        let p99_distance = quantile(&distances, 0.99);
        prediction.by_cause.insert(cause.name().to_owned(), CauseSummary { count, p99_distance });
    }
    mispredicted.sort_by(f64::total_cmp);
    prediction.misprediction_p99_distance = quantile(&mispredicted, 0.99);
    let interpolation = InterpolationSummary {
        stalls,
        stalls_per_bot_per_min: if active_total > 0.0 {
            stalls as f64 / (active_total / 60.0)
        } else {
            0.0
        },
        extrapolations,
        extrapolated_ms: extrapolated_us as f64 / 1000.0,
        delay_ms: quantiles(delays),
        target_delay_ms: quantiles(target_delays),
    };
    let (server, server_error) = match server {
        Ok(m) => (
            Some(ServerSummary {
                ticks: m.tick.count(),
                tick_p50_seconds: m.tick.quantile_upper_bound(0.50),
                tick_p99_seconds: m.tick.quantile_upper_bound(0.99),
                quantiles_are_bucket_upper_bounds: true,
                overruns: m.overruns,
                inputs_measured: m.input_to_snapshot.count(),
                input_to_snapshot_p50_seconds: m.input_to_snapshot.quantile_upper_bound(0.50),
                input_to_snapshot_p99_seconds: m.input_to_snapshot.quantile_upper_bound(0.99),
                cpu_seconds: m.cpu_seconds,
                cpu_seconds_per_player_second: m
                    .cpu_seconds
                    .filter(|_| active_total > 0.0)
                    .map(|cpu| cpu / active_total),
            }),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    BotsReport {
        schema: REPORT_SCHEMA,
        url: config.url.to_string(),
        game: config.game.clone(),
        behavior: config.behavior.clone(),
        seed: config.seed,
        duration_secs: config.duration.as_secs_f64(),
        wall_secs: wall.as_secs_f64(),
        ramp_up_per_sec: config.ramp_up,
        room: config.room.clone(),
        conditioner: config.conditioner,
        transport,
        bots,
        connect_errors,
        disconnects,
        rtt_ms: quantiles(rtt),
        input_echo_ms: quantiles(echo),
        snapshots,
        bytes_received_per_bot_per_sec: spread(&rx_rates),
        bytes_sent_per_bot_per_sec: spread(&tx_rates),
        decode_errors,
        prediction,
        interpolation,
        time_sync,
        conditioner_dropped: conditioner.dropped,
        conditioner_lost: conditioner.lost,
        conditioner_retransmitted: conditioner.retransmitted,
        conditioner_duplicated: conditioner.duplicated,
        conditioner_reordered: conditioner.reordered,
        server,
        server_error,
        moves: MoveSummary { pause_ms: quantiles(pauses), ..moves },
        timeline: Vec::new(),
        per_bot,
    }
}

impl BotsReport {
    /// The report as pretty-printed JSON (what `--report` writes).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Only plain data and string-keyed maps: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses a report written by `tickwire bots --report`.
    ///
    /// # Errors
    ///
    /// When the text is not such a report (a field missing or of the wrong type).
    pub fn from_json(text: &str) -> Result<BotsReport, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The human summary table.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(out, "  {k:<28} {v}");
        };
        let b = &self.bots;
        row("server", self.url.clone());
        row("transport", self.transport.to_string());
        row(
            "bots",
            format!(
                "{} requested, {} connected, {} failed, {} completed, {} disconnected early",
                b.requested, b.connected, b.failed, b.completed, b.disconnected
            ),
        );
        for (why, n) in &self.connect_errors {
            row("  connect error", format!("{n} × {why}"));
        }
        for (code, n) in &self.disconnects.by_code {
            row("  disconnect (close code)", format!("{n} × {code}"));
        }
        for (reason, n) in &self.disconnects.by_reason {
            row("  disconnect (reason)", format!("{n} × {reason}"));
        }
        let m = &self.moves;
        if m.moves > 0 {
            row(
                "room moves followed",
                format!(
                    "{} by {} bots ({} the same entity throughout); pause ms p50 / max {:.1} / {:.1}",
                    m.moves, m.bots_moved, m.same_entity, m.pause_ms.p50, m.pause_ms.max
                ),
            );
        }
        let r = &self.rtt_ms;
        row(
            "rtt ms p50 / p95 / p99",
            format!("{:.2} / {:.2} / {:.2} ({} samples)", r.p50, r.p95, r.p99, r.samples),
        );
        let e = &self.input_echo_ms;
        row(
            "input → echo ms p50/p95/p99",
            format!("{:.2} / {:.2} / {:.2} ({} inputs)", e.p50, e.p95, e.p99, e.samples),
        );
        for (label, n) in [
            ("datagrams lost (conditioner)", self.conditioner_lost),
            ("ordered messages retransmitted (conditioner)", self.conditioner_retransmitted),
            ("datagrams duplicated (conditioner)", self.conditioner_duplicated),
            ("datagrams reordered (conditioner)", self.conditioner_reordered),
        ] {
            if n > 0 {
                row(label, n.to_string());
            }
        }
        let s = &self.snapshots;
        row(
            "snapshots /bot/s",
            format!(
                "mean {:.2}, min {:.2} of {} expected ({:.1}% mean, {:.1}% min)",
                s.per_bot_per_sec.mean,
                s.per_bot_per_sec.min,
                s.expected_per_sec,
                s.fraction_of_expected.mean * 100.0,
                s.fraction_of_expected.min * 100.0
            ),
        );
        row("bots under 90% snapshots", s.bots_below_90_percent.to_string());
        row(
            "bytes /bot/s in / out",
            format!(
                "{:.0} / {:.0}",
                self.bytes_received_per_bot_per_sec.mean, self.bytes_sent_per_bot_per_sec.mean
            ),
        );
        row("decode errors", self.decode_errors.to_string());
        let p = &self.prediction;
        row(
            "prediction corrections",
            format!(
                "{} of {} reconciliations, mean {:.2}, p99 {:.2} units ({} respawns left out)",
                p.corrections, p.reconciliations, p.mean_distance, p.p99_distance, p.respawn_snaps
            ),
        );
        let causes: Vec<String> = p
            .by_cause
            .iter()
            .map(|(name, c)| format!("{name} {} (p99 {:.2})", c.count, c.p99_distance))
            .collect();
        row(
            "mispredictions",
            format!(
                "{}, p99 {:.2} units; by cause: {}",
                p.mispredictions,
                p.misprediction_p99_distance,
                causes.join(", ")
            ),
        );
        let t = &self.time_sync;
        row(
            "time sync",
            format!(
                "{} late input ticks; {} jumps ({} ticks), {} pauses ({} ticks), {} reports",
                t.inputs_late, t.jumps, t.jumped_ticks, t.pauses, t.paused_ticks, t.reports
            ),
        );
        row(
            "interpolation stalls",
            format!(
                "{} ({:.2} per bot per minute); {} extrapolations ({:.0} ms)",
                self.interpolation.stalls,
                self.interpolation.stalls_per_bot_per_min,
                self.interpolation.extrapolations,
                self.interpolation.extrapolated_ms
            ),
        );
        let (d, t) = (&self.interpolation.delay_ms, &self.interpolation.target_delay_ms);
        row(
            "interpolation delay p50/p99",
            format!(
                "{:.1} / {:.1} ms drawn (max {:.1}), {:.1} / {:.1} ms aimed at ({} samples)",
                d.p50, d.p99, d.max, t.p50, t.p99, d.samples
            ),
        );
        let ms = |v: Option<f64>| {
            v.map_or_else(|| "> largest bucket".to_owned(), |s| format!("≤ {:.2} ms", s * 1e3))
        };
        match (&self.server, &self.server_error) {
            (Some(sv), _) => {
                row(
                    "server tick p50 / p99",
                    format!(
                        "{} / {} (bucket upper bounds, {} ticks)",
                        ms(sv.tick_p50_seconds),
                        ms(sv.tick_p99_seconds),
                        sv.ticks
                    ),
                );
                row("server tick overruns", sv.overruns.to_string());
                if let (Some(cpu), Some(per)) = (sv.cpu_seconds, sv.cpu_seconds_per_player_second) {
                    row(
                        "server CPU",
                        format!(
                            "{cpu:.2} s; {:.2} ms per player-second ({:.4} core per player)",
                            per * 1000.0,
                            per
                        ),
                    );
                }
                row(
                    "input → snapshot p50 / p99",
                    format!(
                        "{} / {} (bucket upper bounds, {} inputs)",
                        ms(sv.input_to_snapshot_p50_seconds),
                        ms(sv.input_to_snapshot_p99_seconds),
                        sv.inputs_measured
                    ),
                );
            }
            (None, Some(e)) => row("server metrics", format!("unavailable: {e}")),
            (None, None) => {}
        }
        format!(
            "tickwire bots: {} × {} {} for {} s\n{out}",
            b.requested, self.game, self.behavior, self.duration_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::WsUrl;

    fn config() -> BotsConfig {
        BotsConfig {
            url: WsUrl::parse("ws://127.0.0.1:9/ws").unwrap(),
            count: 2,
            duration: Duration::from_secs(60),
            seed: 7,
            game: "arena".into(),
            behavior: "fight".into(),
            ramp_up: 50.0,
            token: None,
            room: None,
            matchmake: false,
            conditioner: None,
            transport: None,
            trust: None,
            hold: false,
            progress_bar: false,
        }
    }

    #[test]
    fn the_servers_cpu_is_reported_per_player_second() {
        let mut a = BotResult::new(0);
        a.active_secs = 60.0;
        let mut b = BotResult::new(1);
        b.active_secs = 40.0;
        let metrics = TickMetrics {
            tick: super::super::scrape::Buckets(vec![(0.001, 100), (f64::INFINITY, 100)]),
            cpu_seconds: Some(3.0),
            ..TickMetrics::default()
        };
        let report = build(
            &config(),
            crate::link::TransportKind::default(),
            &[a, b],
            Duration::from_secs(61),
            Ok(metrics.clone()),
        );
        let server = report.server.as_ref().expect("scraped");
        assert_eq!(server.cpu_seconds, Some(3.0));
        assert_eq!(server.cpu_seconds_per_player_second, Some(0.03));
        assert!(
            report.summary().contains("server CPU                   3.00 s; 30.00 ms per player-second (0.0300 core per player)"),
            "{}",
            report.summary()
        );
        let back = BotsReport::from_json(&report.to_json()).unwrap();
        assert_eq!(back.server, report.server);
        // From a server without the metric: no figure, and no line.
        let old = TickMetrics { cpu_seconds: None, ..metrics };
        let report = build(
            &config(),
            crate::link::TransportKind::default(),
            &[BotResult::new(0)],
            Duration::from_secs(61),
            Ok(old),
        );
        assert_eq!(report.server.as_ref().unwrap().cpu_seconds_per_player_second, None);
        assert!(!report.summary().contains("server CPU"), "{}", report.summary());
    }

    #[test]
    fn interpolation_delay_quantiles_over_all_bots() {
        let mut a = BotResult::new(0);
        a.interp_delay_us = (1..=99).map(|ms| ms * 1_000).collect();
        let mut b = BotResult::new(1);
        b.interp_delay_us = vec![250_000];
        a.interp_target_delay_us = vec![40_000; 99];
        b.interp_target_delay_us = vec![60_000];
        (a.stalls, a.extrapolations, a.extrapolated_us) = (1, 3, 40_000);
        (b.extrapolations, b.extrapolated_us) = (2, 25_700);
        let report = build(
            &config(),
            crate::link::TransportKind::default(),
            &[a, b],
            Duration::from_secs(61),
            Err("not scraped".into()),
        );
        let i = &report.interpolation;
        assert_eq!((i.stalls, i.extrapolations, i.extrapolated_ms), (1, 5, 65.7));
        assert!(report.summary().contains("; 5 extrapolations (66 ms)"), "{}", report.summary());
        let d = &report.interpolation.delay_ms;
        assert_eq!((d.samples, d.p50, d.p99, d.max), (100, 50.0, 99.0, 250.0));
        let t = &report.interpolation.target_delay_ms;
        assert_eq!((t.samples, t.p50, t.max), (100, 40.0, 60.0));
        assert!(
            report.summary().contains(
                "interpolation delay p50/p99  50.0 / 99.0 ms drawn (max 250.0), \
                 40.0 / 40.0 ms aimed at (100 samples)"
            ),
            "{}",
            report.summary()
        );
        let back = BotsReport::from_json(&report.to_json()).unwrap();
        assert_eq!(back.interpolation, report.interpolation);
        // A report written before the delay was measured still reads, with no samples.
        let old = report.to_json().replace("\"delay_ms\"", "\"unknown_field\"");
        let old = old.replace("\"target_delay_ms\"", "\"other_unknown_field\"");
        let old = BotsReport::from_json(&old).unwrap();
        assert_eq!(old.interpolation.delay_ms, Quantiles::default());
        assert_eq!(old.interpolation.target_delay_ms, Quantiles::default());
    }
}
