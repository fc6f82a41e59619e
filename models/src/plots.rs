//! ROC and precision-recall curves and a score histogram as PNGs (host only).
//!
//! Text needs a TrueType font: the first of `OBGUARD_FONT` and a few common system paths
//! that exists is registered; without one the charts are drawn without labels.
#![allow(clippy::indexing_slicing)] // host-only plotting over vectors it sized itself

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use crate::eval::Report;

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

fn register_font() -> bool {
    let candidates = std::env::var("OBGUARD_FONT")
        .ok()
        .into_iter()
        .chain(FONT_PATHS.iter().map(|s| s.to_string()));
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                return true;
            }
        }
    }
    false
}

/// (false positive rate, true positive rate) and (recall, precision) points, thinned.
type Curve = Vec<(f64, f64)>;

fn curves(report: &Report) -> (Curve, Curve) {
    let mut s = report.scores.clone();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = s.iter().filter(|x| x.1).count().max(1) as f64;
    let neg = (s.len() as f64 - pos).max(1.0);
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = Vec::new();
    let step = (s.len() / 4000).max(1);
    let mut i = 0;
    while i < s.len() {
        let score = s[i].0;
        while i < s.len() && s[i].0 == score {
            if s[i].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        if i % step == 0 || i == s.len() || fp < 50.0 {
            roc.push((fp / neg, tp / pos));
            pr.push((tp / pos, tp / (tp + fp)));
        }
    }
    roc.push((1.0, 1.0));
    (roc, pr)
}

/// The mesh (with axis labels when there is a font) and `points` as a line.
fn draw_curve<DB, X, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<X, Y>>,
    labels: bool,
    xlabel: &str,
    ylabel: &str,
    points: impl IntoIterator<Item = (f64, f64)>,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    if labels {
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc(ylabel)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// An 800x600 white canvas drawn into `path`.
fn canvas(path: &Path) -> Result<DrawingArea<BitMapBackend<'_>, Shift>> {
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    Ok(root)
}

/// A chart on `root` with a 20 px margin and, when there is a font, `caption` in
/// `caption_size` px and room for the axis labels.
fn chart_builder<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    labels: bool,
    caption: &str,
    caption_size: i32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.margin(20);
    if labels {
        builder
            .caption(caption, ("sans-serif", caption_size))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    builder
}

/// A line chart's axes: their labels, and whether x is on a log scale.
struct Axes {
    x: &'static str,
    y: &'static str,
    log_x: bool,
}

const ROC_AXES: Axes = Axes {
    x: "false positive rate (log)",
    y: "true positive rate",
    log_x: true,
};

const PR_AXES: Axes = Axes {
    x: "recall",
    y: "precision",
    log_x: false,
};

fn line_chart(
    path: &Path,
    title: &str,
    axes: &Axes,
    points: &[(f64, f64)],
    labels: bool,
) -> Result<()> {
    let Axes {
        x: xlabel,
        y: ylabel,
        log_x,
    } = *axes;
    let root = canvas(path)?;
    let mut builder = chart_builder(&root, labels, title, 24);
    if log_x {
        let pts: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.max(1e-6), *y)).collect();
        let chart = builder
            .build_cartesian_2d((1e-6f64..1.0f64).log_scale(), 0f64..1.0f64)
            .map_err(|e| anyhow!("{e}"))?;
        draw_curve(chart, labels, xlabel, ylabel, pts)?;
    } else {
        let chart = builder
            .build_cartesian_2d(0f64..1.0f64, 0f64..1.0f64)
            .map_err(|e| anyhow!("{e}"))?;
        draw_curve(chart, labels, xlabel, ylabel, points.iter().copied())?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn histogram(path: &Path, report: &Report, labels: bool) -> Result<()> {
    const BINS: usize = 50;
    let mut normal = [0u64; BINS];
    let mut attack = [0u64; BINS];
    for (s, a) in &report.scores {
        let b = ((s.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        if *a { attack[b] += 1 } else { normal[b] += 1 }
    }
    let max = normal
        .iter()
        .chain(attack.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let root = canvas(path)?;
    let caption = "score histogram (log count): normal blue, attack red";
    let mut builder = chart_builder(&root, labels, caption, 22);
    let mut chart = builder
        .build_cartesian_2d(0f64..1.0f64, (0.5f64..max * 2.0).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    if labels {
        chart
            .configure_mesh()
            .x_desc("score")
            .y_desc("requests")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    let w = 1.0 / BINS as f64;
    for (counts, color) in [(&normal, BLUE.mix(0.5)), (&attack, RED.mix(0.5))] {
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| {
                        Rectangle::new(
                            [(i as f64 * w, 0.5), ((i + 1) as f64 * w, *c as f64)],
                            color.filled(),
                        )
                    }),
            )
            .map_err(|e| anyhow!("{e}"))?;
    }
    let t = report.thresholds;
    for (x, c) in [(t.step_up, GREEN), (t.throttle, MAGENTA), (t.block, BLACK)] {
        chart
            .draw_series(LineSeries::new(
                vec![(f64::from(x), 0.5), (f64::from(x), max * 2.0)],
                c.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// roc.png (log false-positive axis), pr.png, score-histogram.png into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<()> {
    let labels = register_font();
    let (roc, pr) = curves(report);
    let roc_title = format!("ROC (AUC {:.4})", report.roc_auc);
    line_chart(&dir.join("roc.png"), &roc_title, &ROC_AXES, &roc, labels)?;
    let pr_title = format!("precision-recall (AP {:.4})", report.average_precision);
    line_chart(&dir.join("pr.png"), &pr_title, &PR_AXES, &pr, labels)?;
    histogram(&dir.join("score-histogram.png"), report, labels)?;
    Ok(())
}
