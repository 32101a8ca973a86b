//! The ROC curve as a PNG (plotters, bitmap backend).
//!
//! Text needs a TrueType font; the first of a few common system fonts is used. Without one the
//! curve is still drawn, with a tick grid but no labels.

use std::path::Path;

use consentry_face::eval::RocPoint;
use plotters::prelude::*;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_font() -> bool {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps the font for the life of the process: leak the bytes once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Draws TAR against FAR (log scale, 1e-4..1) to `path`.
pub fn roc_png(path: &Path, roc: &[RocPoint]) -> Result<(), Box<dyn std::error::Error>> {
    let labels = register_font();
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if labels {
        builder
            .caption("ROC: YuNet + SFace", ("sans-serif", 24))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d((1e-4f64..1.0f64).log_scale(), 0.8f64..1.0f64)?;
    let mut mesh = chart.configure_mesh();
    if labels {
        mesh.x_desc("false accept rate").y_desc("true accept rate");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    // Points at FAR 0 cannot sit on a log axis: clamp them to its left edge.
    let points = roc.iter().map(|p| (p.far.max(1e-4), p.tar.max(0.8)));
    chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
    root.present()?;
    Ok(())
}

/// Draws a DET curve (BPCER against APCER, log scales 1e-3..1) to `path`.
pub fn det_png(
    path: &Path,
    curve: &[(f64, f64)],
    model: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    det_png_with(
        path,
        curve,
        &format!("DET: passive PAD ({model})"),
        (
            "APCER (attacks taken for real)",
            "BPCER (real taken for attacks)",
        ),
    )
}

/// Draws a DET curve (`(x, y)` error rates, log scales 1e-3..1) with this title and axis names.
pub fn det_png_with(
    path: &Path,
    curve: &[(f64, f64)],
    title: &str,
    axes: (&str, &str),
) -> Result<(), Box<dyn std::error::Error>> {
    let labels = register_font();
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if labels {
        builder
            .caption(title, ("sans-serif", 24))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart =
        builder.build_cartesian_2d((1e-3f64..1.0f64).log_scale(), (1e-3f64..1.0f64).log_scale())?;
    let mut mesh = chart.configure_mesh();
    if labels {
        mesh.x_desc(axes.0).y_desc(axes.1);
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    // Rates of 0 cannot sit on a log axis: clamp them to its edge.
    let points = curve.iter().map(|&(a, b)| (a.max(1e-3), b.max(1e-3)));
    chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
    root.present()?;
    Ok(())
}
