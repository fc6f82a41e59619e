//! The report's two plots as inline SVG: requests per hour stacked by verdict, and score over
//! time with novelty markers and containment lines.
//!
//! Written by hand rather than with plotters: plotters lays out every label by measuring it
//! with a TrueType font (`estimate_text_size`), so on a machine without one its charts lose
//! their text, as `plots.rs` documents for the PNGs. SVG `<text>` needs no font file: the
//! browser renders it. Coordinates are printed with one decimal, so the same timeline always
//! gives the same bytes.

use std::fmt::Write as _;

use html_escape::encode_quoted_attribute as esc;
use time::OffsetDateTime;

use super::{Category, Entry, Timeline, format_ms};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 60.0;
/// The legend sits right of the plot area.
const PLOT_RIGHT: f64 = 720.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 260.0;
const HOUR_MS: i64 = 3_600_000;
/// At most this many bars: beyond it the bars would be thinner than a pixel, so a long
/// timeline gets wider buckets (2 h, 3 h, …, days).
const MAX_BUCKETS: i64 = 240;

/// The time axis both plots share, so that a bar and the points above it line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeAxis {
    /// Unix ms, aligned to `bucket_ms` (UTC).
    pub start_ms: i64,
    pub end_ms: i64,
    pub bucket_ms: i64,
}

impl TimeAxis {
    /// Spans every request and containment of `t` in whole buckets of an hour, or of a
    /// multiple of an hour when there would be more than 240 buckets.
    pub fn of(t: &Timeline) -> TimeAxis {
        let times = t
            .entries
            .iter()
            .map(|e| e.ts_ms)
            .chain(t.containments.iter().map(|c| c.ts_ms));
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let (lo, hi) = if lo > hi { (0, 0) } else { (lo, hi) };
        let hours = (hi - lo) / HOUR_MS + 2;
        let bucket_h = [1, 2, 3, 6, 12, 24, 48, 168]
            .into_iter()
            .find(|h| hours / h < MAX_BUCKETS)
            .unwrap_or_else(|| (hours / MAX_BUCKETS + 24) / 24 * 24);
        let bucket_ms = bucket_h * HOUR_MS;
        let start_ms = lo.div_euclid(bucket_ms) * bucket_ms;
        let buckets = ((hi - start_ms) / bucket_ms + 1).max(1);
        TimeAxis {
            start_ms,
            end_ms: start_ms + buckets * bucket_ms,
            bucket_ms,
        }
    }

    pub fn buckets(&self) -> usize {
        usize::try_from((self.end_ms - self.start_ms) / self.bucket_ms).unwrap_or(0)
    }

    fn x(&self, ts_ms: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        LEFT + (ts_ms - self.start_ms) as f64 / span * (PLOT_RIGHT - LEFT)
    }

    fn bucket_of(&self, ts_ms: i64) -> Option<usize> {
        usize::try_from((ts_ms - self.start_ms).div_euclid(self.bucket_ms)).ok()
    }

    /// Tick times and whether labels need the time of day.
    fn ticks(&self) -> (Vec<i64>, bool) {
        const MIN: i64 = 60_000;
        const DAY: i64 = 24 * HOUR_MS;
        let span = self.end_ms - self.start_ms;
        let step = [
            10 * MIN,
            15 * MIN,
            30 * MIN,
            HOUR_MS,
            2 * HOUR_MS,
            3 * HOUR_MS,
            6 * HOUR_MS,
            12 * HOUR_MS,
            DAY,
            2 * DAY,
            7 * DAY,
            14 * DAY,
            28 * DAY,
        ]
        .into_iter()
        .find(|s| span / s <= 8)
        .unwrap_or_else(|| (span / 8 / DAY + 1) * DAY);
        let first = self.start_ms.div_euclid(step) * step;
        let ticks = (0..)
            .map(|i| first + i * step)
            .skip_while(|t| *t < self.start_ms)
            .take_while(|t| *t <= self.end_ms)
            .collect();
        (ticks, step < DAY)
    }
}

/// `11-25 17:00`, or `2026-11-25` for day ticks (UTC).
fn tick_label(ms: i64, time_of_day: bool) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    let formatted = if time_of_day {
        t.format(&time::macros::format_description!(
            "[month]-[day] [hour]:[minute]"
        ))
    } else {
        t.format(&time::macros::format_description!("[year]-[month]-[day]"))
    };
    formatted.unwrap_or_else(|_| ms.to_string())
}

fn open(out: &mut String, id: &str, label: &str) -> std::fmt::Result {
    write!(
        out,
        r#"<svg id="{id}" class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        esc(label)
    )?;
    write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#fafafa" stroke="#bbb"/>"##,
        PLOT_RIGHT - LEFT,
        BOTTOM - TOP
    )
}

/// The time axis: ticks, labels and its title.
fn x_axis(out: &mut String, axis: &TimeAxis) -> std::fmt::Result {
    let (ticks, time_of_day) = axis.ticks();
    for t in ticks {
        let x = axis.x(t);
        write!(
            out,
            r##"<line x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{:.1}" stroke="#777"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            BOTTOM + 5.0,
            BOTTOM + 18.0,
            tick_label(t, time_of_day)
        )?;
    }
    write!(
        out,
        r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">time (UTC)</text>"#,
        (LEFT + PLOT_RIGHT) / 2.0,
        BOTTOM + 40.0
    )
}

/// A value axis from 0 to `max` with the given ticks and title (rotated, left).
fn y_axis(
    out: &mut String,
    max: f64,
    ticks: &[f64],
    title: &str,
    decimals: usize,
) -> std::fmt::Result {
    for v in ticks {
        let y = y_of(*v, max);
        write!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{PLOT_RIGHT}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.decimals$}</text>"##,
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0
        )?;
    }
    let mid = (TOP + BOTTOM) / 2.0;
    write!(
        out,
        r#"<text class="axis-label" x="16" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 16 {mid:.1})">{}</text>"#,
        esc(title)
    )
}

fn y_of(v: f64, max: f64) -> f64 {
    BOTTOM - v.clamp(0.0, max) / max.max(f64::MIN_POSITIVE) * (BOTTOM - TOP)
}

/// The legend's `i`-th row: a swatch drawn by `swatch` at (x, y) and its label.
fn legend_row(
    out: &mut String,
    i: usize,
    label: &str,
    swatch: impl FnOnce(&mut String, f64, f64) -> std::fmt::Result,
) -> std::fmt::Result {
    let y = TOP + 10.0 + 18.0 * i as f64;
    let x = PLOT_RIGHT + 20.0;
    swatch(out, x, y)?;
    write!(
        out,
        r#"<text class="legend" x="{:.1}" y="{:.1}">{}</text>"#,
        x + 18.0,
        y + 4.0,
        esc(label)
    )
}

fn square(out: &mut String, x: f64, y: f64, colour: &str) -> std::fmt::Result {
    write!(
        out,
        r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/>"#,
        y - 6.0
    )
}

fn diamond(out: &mut String, x: f64, y: f64, colour: &str, class: &str) -> std::fmt::Result {
    write!(
        out,
        r##"<path class="{class}" d="M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z" fill="{colour}" stroke="#000" stroke-width="1.2"/>"##,
        y - 6.0,
        x + 6.0,
        y + 6.0,
        x - 6.0
    )
}

/// A tick step of 1, 2 or 5 × 10ⁿ giving at most five steps up to `max`.
fn nice_step(max: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if max / (step * m) <= 5.0 {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

/// Plot 1: requests per bucket (an hour unless the timeline is long), stacked by
/// [`Category`] in [`Category::ALL`] order, each bar segment with a tooltip.
pub fn requests_per_hour(t: &Timeline, axis: &TimeAxis) -> Result<String, std::fmt::Error> {
    let n = axis.buckets();
    let mut counts = vec![[0usize; 6]; n];
    for e in &t.entries {
        let c = e.category();
        if let Some(slot) = axis
            .bucket_of(e.ts_ms)
            .and_then(|b| counts.get_mut(b))
            .and_then(|row| row.get_mut(c.index()))
        {
            *slot += 1;
        }
    }
    let peak = counts
        .iter()
        .map(|r| r.iter().sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = nice_step(peak);
    let max = (peak / step).ceil() * step;
    let ticks: Vec<f64> = (0..=((max / step) as usize))
        .map(|i| i as f64 * step)
        .collect();
    let hours = axis.bucket_ms / HOUR_MS;
    let per = if hours == 1 {
        "hour".to_owned()
    } else {
        format!("{hours} h")
    };

    let mut out = String::new();
    open(
        &mut out,
        "plot-requests",
        &format!("requests per {per} by verdict"),
    )?;
    y_axis(&mut out, max, &ticks, &format!("requests per {per}"), 0)?;
    let slot = (PLOT_RIGHT - LEFT) / n.max(1) as f64;
    let gap = if slot > 4.0 { 1.0 } else { 0.0 };
    for (b, row) in counts.iter().enumerate() {
        let x = LEFT + b as f64 * slot + gap / 2.0;
        let start = axis.start_ms + b as i64 * axis.bucket_ms;
        let mut below = 0usize;
        for (c, count) in Category::ALL.iter().zip(row) {
            if *count == 0 {
                continue;
            }
            let y_top = y_of((below + count) as f64, max);
            let y_bottom = y_of(below as f64, max);
            write!(
                out,
                r#"<rect class="bar {}" x="{x:.1}" y="{y_top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} +{per}: {count} {}</title></rect>"#,
                c.css(),
                (slot - gap).max(0.5),
                y_bottom - y_top,
                c.colour(),
                tick_label(start, true),
                c.label()
            )?;
            below += count;
        }
    }
    x_axis(&mut out, axis)?;
    for (i, c) in Category::ALL.iter().enumerate() {
        legend_row(&mut out, i, c.label(), |o, x, y| {
            square(o, x, y, c.colour())
        })?;
    }
    out.push_str("</svg>");
    Ok(out)
}

/// Plot 2: each scored request's score, coloured by verdict; a request with a novelty reason
/// as a diamond; each containment action as a dashed vertical line labelled with its action.
pub fn score_over_time(t: &Timeline, axis: &TimeAxis) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    open(
        &mut out,
        "plot-scores",
        "score over time, novelty markers and containment actions",
    )?;
    y_axis(&mut out, 1.0, &[0.0, 0.25, 0.5, 0.75, 1.0], "score", 2)?;
    let scored: Vec<&Entry> = t.entries.iter().filter(|e| e.score.is_some()).collect();
    if scored.is_empty() {
        write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">no scored requests</text>"##,
            (LEFT + PLOT_RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0
        )?;
    }
    // Plain points first, so that novelty diamonds are drawn on top of them.
    for novelty in [false, true] {
        for e in scored.iter().filter(|e| e.has_novelty() == novelty) {
            let score = e.score.unwrap_or_default();
            let (x, y) = (axis.x(e.ts_ms), y_of(score, 1.0));
            let c = e.category();
            let tip = format!("{} {} score {score:.3}", format_ms(e.ts_ms), c.label());
            if novelty {
                out.push_str("<g>");
                diamond(&mut out, x, y, c.colour(), &format!("novelty {}", c.css()))?;
                write!(out, "<title>{} (novelty)</title></g>", esc(&tip))?;
            } else {
                write!(
                    out,
                    r#"<circle class="point {}" cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"><title>{}</title></circle>"#,
                    c.css(),
                    c.colour(),
                    esc(&tip)
                )?;
            }
        }
    }
    for c in &t.containments {
        let x = axis.x(c.ts_ms);
        write!(
            out,
            r##"<line class="containment" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#000" stroke-width="1.5" stroke-dasharray="5 3"><title>{} {}</title></line><text class="containment-label" x="{:.1}" y="{:.1}">{}</text>"##,
            esc(&c.action),
            format_ms(c.ts_ms),
            x + 3.0,
            TOP + 12.0,
            esc(&c.action)
        )?;
    }
    x_axis(&mut out, axis)?;
    let verdicts = [
        Category::Allow,
        Category::StepUp,
        Category::Throttle,
        Category::Block,
    ];
    for (i, c) in verdicts.iter().enumerate() {
        legend_row(&mut out, i, c.label(), |o, x, y| {
            write!(
                o,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="{}"/>"#,
                x + 6.0,
                c.colour()
            )
        })?;
    }
    legend_row(&mut out, verdicts.len(), "novelty (new_…)", |o, x, y| {
        diamond(o, x + 6.0, y, "#fff", "legend-novelty")
    })?;
    legend_row(&mut out, verdicts.len() + 1, "containment", |o, x, y| {
        write!(
            o,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000" stroke-width="1.5" stroke-dasharray="5 3"/>"##,
            x + 6.0,
            y - 7.0,
            x + 6.0,
            y + 7.0
        )
    })?;
    out.push_str("</svg>");
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::report::{Containment, ReadStats, ReasonText, parse_time};

    fn entry(ts: &str, score: Option<f64>, reason: &str) -> Entry {
        Entry {
            ts_ms: parse_time(ts).unwrap(),
            client_id: "c".into(),
            score,
            verdict: score.map(|_| crate::Verdict::Allow),
            reasons: vec![ReasonText {
                text: reason.into(),
                feature: None,
                strength: None,
            }],
            ..Entry::default()
        }
    }

    fn timeline(entries: Vec<Entry>, containments: Vec<Containment>) -> Timeline {
        Timeline {
            client: "c".into(),
            client_ids: vec!["c".into()],
            from_ms: None,
            to_ms: None,
            entries,
            containments,
            stats: ReadStats::default(),
        }
    }

    #[test]
    fn hourly_buckets_aligned_to_the_hour() {
        let t = timeline(
            vec![
                entry("2026-11-25T17:04:20Z", None, "x"),
                entry("2026-11-25T19:59:59Z", None, "x"),
            ],
            vec![],
        );
        let a = TimeAxis::of(&t);
        assert_eq!(a.bucket_ms, HOUR_MS);
        assert_eq!(format_ms(a.start_ms), "2026-11-25T17:00:00.000Z");
        assert_eq!(format_ms(a.end_ms), "2026-11-25T20:00:00.000Z");
        assert_eq!(a.buckets(), 3);
    }

    #[test]
    fn long_timelines_get_wider_buckets() {
        let t = timeline(
            vec![
                entry("2026-01-01T00:00:00Z", None, "x"),
                entry("2026-03-01T00:00:00Z", None, "x"),
            ],
            vec![],
        );
        let a = TimeAxis::of(&t);
        assert!(a.bucket_ms > HOUR_MS);
        assert!(a.buckets() as i64 <= MAX_BUCKETS, "{}", a.buckets());
        assert_eq!(a.bucket_ms % HOUR_MS, 0);
    }

    #[test]
    fn plots_have_labels_legends_markers_and_lines() {
        let t = timeline(
            vec![
                entry("2026-11-25T17:04:20Z", Some(0.2), "hour_rare(03:10)"),
                entry("2026-11-25T17:05:20Z", Some(0.9), "new_country(RU)"),
            ],
            vec![Containment {
                ts_ms: parse_time("2026-11-25T17:06:00Z").unwrap(),
                action: "quarantine".into(),
                playbook: None,
                until: None,
                event_id: None,
            }],
        );
        let a = TimeAxis::of(&t);
        let bars = requests_per_hour(&t, &a).unwrap();
        assert!(bars.contains("requests per hour"));
        assert!(bars.contains("time (UTC)"));
        assert!(bars.contains(">refused without verdict</text>"));
        assert!(bars.contains(r#"class="bar allow""#));
        let scores = score_over_time(&t, &a).unwrap();
        assert_eq!(scores.matches(r#"class="novelty allow""#).count(), 1);
        assert_eq!(scores.matches(r#"class="point allow""#).count(), 1);
        assert!(scores.contains(r#"class="containment""#));
        assert!(scores.contains(">novelty (new_…)</text>"));
        assert!(scores.contains(">quarantine</text>"));
        assert_eq!(bars, requests_per_hour(&t, &a).unwrap(), "deterministic");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(23.0), 5.0);
        assert_eq!(nice_step(480.0), 100.0);
    }
}
