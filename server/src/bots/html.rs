//! `tickwire bots --html FILE`: the run as one page people look at. Everything is inline (SVG
//! charts drawn here, a little CSS, no script, nothing fetched), so the file can be mailed,
//! attached to an issue or opened from disk.

use std::fmt::Write as _;

use tickwire_shared::client::CorrectionCause;

use super::report::{BotsReport, TimelinePoint};

/// Chart size in CSS pixels, and the plot's margins inside it.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 28.0;

/// Line colours, in series order.
const COLOURS: [&str; 4] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

/// Escapes text for HTML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The smallest "round" number (1, 2 or 5 × a power of ten) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|&c| c >= v).unwrap_or(10.0 * power)
}

/// One named line of a chart: `(x, y)` points, `None` where there was no value.
struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, Option<f64>)>,
}

/// A line chart as inline SVG, in a `<figure>` whose `data-series` names it and whose
/// `data-points` counts the values drawn (for tests and scripts).
fn chart(id: &str, title: &str, unit: &str, series: &[Series<'_>]) -> String {
    let x_max =
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.0f64, f64::max).max(1.0);
    let y_top = nice_ceiling(
        series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.1)).fold(0.0f64, f64::max),
    );
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - (v / y_top).clamp(0.0, 1.0) * plot_h;
    let drawn: usize =
        series.iter().map(|s| s.points.iter().filter(|p| p.1.is_some()).count()).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure class="chart" data-series="{id}" data-points="{drawn}"><figcaption>{title} <span class="unit">({unit})</span></figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}">"#,
        title = escape(title),
        unit = escape(unit),
    );
    // Grid lines and their labels: 0, ¼, ½, ¾ and the top of the scale.
    for i in 0..=4 {
        let v = y_top * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yv:.1}" y2="{yv:.1}" stroke="#e5e7eb"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="11" fill="#6b7280">{v}</text>"##,
            x2 = WIDTH - RIGHT,
            yv = y(v),
            tx = LEFT - 6.0,
            ty = y(v) + 4.0,
            v = format_number(v),
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{xm}" y="{yl}" text-anchor="middle" font-size="11" fill="#6b7280">seconds (0–{x_max:.0})</text>"##,
        xm = LEFT + plot_w / 2.0,
        yl = HEIGHT - 8.0,
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // A gap in the values breaks the line.
        for run in s.points.split(|p| p.1.is_none()).filter(|r| !r.is_empty()) {
            let points: Vec<String> = run
                .iter()
                .filter_map(|&(px, py)| py.map(|v| format!("{:.1},{:.1}", x(px), y(v))))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
                points.join(" ")
            );
            if run.len() == 1 {
                let (px, py) = (run[0].0, run[0].1.unwrap_or(0.0));
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                    x(px),
                    y(py)
                );
            }
        }
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="8" width="10" height="10" fill="{colour}"/><text x="{tx}" y="17" font-size="12">{name}</text>"#,
            lx = LEFT + 150.0 * i as f64,
            tx = LEFT + 150.0 * i as f64 + 14.0,
            name = escape(s.name),
        );
    }
    if drawn == 0 {
        let _ = write!(
            svg,
            r##"<text x="{xm}" y="{ym}" text-anchor="middle" fill="#6b7280">no data</text>"##,
            xm = LEFT + plot_w / 2.0,
            ym = TOP + plot_h / 2.0,
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

fn format_number(v: f64) -> String {
    if v >= 100.0 || v == v.round() { format!("{v:.0}") } else { format!("{v:.2}") }
}

fn series<'a>(
    name: &'a str,
    timeline: &[TimelinePoint],
    value: impl Fn(&TimelinePoint) -> Option<f64>,
) -> Series<'a> {
    Series { name, points: timeline.iter().map(|p| (p.t_secs, value(p))).collect() }
}

/// The report as one self-contained HTML page: the run's facts, the summary, and charts of the
/// round trip, the snapshot rate, the corrections by cause, the bytes per client and the
/// server's tick time over the run.
#[must_use]
pub fn render(report: &BotsReport) -> String {
    let t = &report.timeline;
    let mut charts = String::new();
    charts.push_str(&chart(
        "rtt",
        "Round trip",
        "ms, mean of the pongs each second",
        &[series("rtt", t, |p| p.rtt_ms)],
    ));
    charts.push_str(&chart(
        "snapshots",
        "Snapshot rate",
        "snapshots per bot per second",
        &[series("snapshots", t, |p| p.snapshots_per_bot_per_sec)],
    ));
    let causes: Vec<Series<'_>> = CorrectionCause::ALL
        .iter()
        .map(|cause| {
            series(cause.name(), t, |p| p.corrections.get(cause.index()).map(|&c| c as f64))
        })
        .collect();
    charts.push_str(&chart("corrections", "Corrections by cause", "per second, all bots", &causes));
    charts.push_str(&chart(
        "bytes",
        "Bytes per client",
        "bytes received per bot per second",
        &[series("bytes", t, |p| p.bytes_per_bot_per_sec)],
    ));
    charts.push_str(&chart(
        "tick",
        "Server tick time",
        "ms, bucket bounds",
        &[series("p50", t, |p| p.tick_p50_ms), series("p99", t, |p| p.tick_p99_ms)],
    ));
    let facts = [
        ("server", report.url.clone()),
        ("game", report.game.clone()),
        ("behaviour", report.behavior.clone()),
        ("transport", report.transport.to_string()),
        (
            "bots",
            format!("{} requested, {} connected", report.bots.requested, report.bots.connected),
        ),
        ("duration", format!("{:.0} s ({:.1} s wall)", report.duration_secs, report.wall_secs)),
    ];
    let mut rows = String::new();
    for (k, v) in facts {
        let _ = write!(rows, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tickwire bots · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 760px; color: #111827; }}
h1 {{ font-size: 1.4rem; }} table {{ border-collapse: collapse; }}
th {{ text-align: left; padding-right: 1rem; color: #4b5563; font-weight: 500; }}
figure {{ margin: 1.5rem 0; }} figcaption {{ font-weight: 600; margin-bottom: .3rem; }}
.unit {{ font-weight: 400; color: #6b7280; }}
pre {{ background: #f3f4f6; padding: .8rem; overflow-x: auto; font-size: 12px; }}
</style></head>
<body>
<h1>Tickwire bots: {title}</h1>
<table>{rows}</table>
{charts}<h2>Summary</h2>
<pre>{summary}</pre>
</body></html>
"#,
        title = escape(&format!("{} × {} on {}", report.bots.requested, report.game, report.url)),
        summary = escape(&report.summary()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_escape_and_break_at_gaps() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let gap = Series {
            name: "s",
            points: vec![(0.0, Some(1.0)), (1.0, Some(2.0)), (2.0, None), (3.0, Some(4.0))],
        };
        let svg = chart("x", "T<1>", "u", &[gap]);
        assert!(svg.contains(r#"data-points="3""#), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 2, "the gap breaks the line");
        assert!(svg.contains("T&lt;1&gt;"));
        let empty = chart("e", "E", "u", &[Series { name: "s", points: Vec::new() }]);
        assert!(empty.contains("no data"));
    }
}
