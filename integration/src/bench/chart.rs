//! `docs/benchmarks.png`: throughput relative to bare Envoy per variant (median bar, min–max
//! whisker), obguard's variants labelled with their fraction of their floor too.

use std::path::Path;

use super::Round;
use super::report::ratios;
use super::variants::Variant;
use crate::measure::{median, min_max, register_chart_font};

/// One bar: name, ratio to bare (median, min, max), fraction of its floor (median).
struct Bar {
    name: &'static str,
    median: f64,
    lo: f64,
    hi: f64,
    of_floor: Option<f64>,
    is_floor: bool,
}

pub fn draw(path: &Path, variants: &[Variant], rounds: &[Round]) -> Result<(), String> {
    use plotters::prelude::*;
    register_chart_font()?;
    let bars: Vec<Bar> = variants
        .iter()
        .filter_map(|v| {
            let ratio = ratios(rounds, v.name, "bare");
            if ratio.is_empty() {
                return None;
            }
            let (lo, hi) = min_max(&ratio);
            Some(Bar {
                name: v.name,
                median: median(&ratio),
                lo,
                hi,
                of_floor: v.floor.map(|f| median(&ratios(rounds, v.name, f))),
                is_floor: v.name.starts_with(super::variants::FLOOR),
            })
        })
        .collect();
    let x_max = bars.iter().map(|b| b.hi).fold(1.0f64, f64::max) + 0.3;
    let root = BitMapBackend::new(path, (1100, 60 + 44 * bars.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput relative to bare Envoy (median, min–max whiskers; obguard also × its floor)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(280)
        .build_cartesian_2d(
            0.0..x_max,
            (0..bars.len().saturating_sub(1)).into_segmented(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |b| b.name.to_owned()),
            _ => String::new(),
        })
        .x_desc("ratio to bare Envoy rps")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, bar) in bars.iter().enumerate() {
        let color = if bar.is_floor {
            RGBColor(44, 160, 44)
        } else if bar.name.contains("obguard") {
            RGBColor(31, 119, 180)
        } else {
            RGBColor(150, 150, 150)
        };
        let mut rect = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (bar.median, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.8).filled(),
        );
        rect.set_margin(7, 7, 0, 0);
        chart
            .draw_series(std::iter::once(rect))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (bar.lo, SegmentValue::CenterOf(i)),
                    (bar.hi, SegmentValue::CenterOf(i)),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;
        let label = match bar.of_floor {
            Some(f) => format!("{:.2}  ({f:.2}× floor)", bar.median),
            None => format!("{:.2}", bar.median),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (bar.hi.max(bar.median) + 0.01, SegmentValue::CenterOf(i)),
                ("sans-serif", 14),
            )))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
