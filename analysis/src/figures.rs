//! The report's figures, drawn with plotters into PNG and SVG with the font shipped in
//! `assets/` (DejaVu Sans, registered from bytes: nothing depends on system fonts).

use crate::error::{io_err, AnalysisError};
use crate::tables::Spread;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`).
pub static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the shipped font under `sans-serif` (once per process).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would only mean plain boxes.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the shipped font could not be registered; text will be missing");
        }
    });
}

/// tab10 colours.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const APPARATE: RGBColor = PALETTE[0];
const OTHER: RGBColor = PALETTE[1];
const GREY: RGBColor = RGBColor(110, 110, 110);

type DrawResult = Result<(), String>;

/// An f64 axis whose ticks (and labels) sit exactly at the given points: category centres, or
/// chosen exit points.
#[derive(Clone, Debug)]
pub struct KeyAxis {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

impl KeyAxis {
    /// The axis `lo..hi` with ticks at `keys`.
    pub fn new(lo: f64, hi: f64, keys: Vec<f64>) -> KeyAxis {
        KeyAxis { lo, hi, keys }
    }
}

impl Ranged for KeyAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }
    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A figure that can be drawn on any plotters backend.
pub trait Plot: Sync {
    /// Pixel size.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Writes `base.png` and `base.svg`; returns both paths.
pub fn save<P: Plot>(plot: &P, base: &Path) -> Result<[PathBuf; 2], AnalysisError> {
    register_font();
    let png = base.with_extension("png");
    let svg = base.with_extension("svg");
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| AnalysisError::Figure { path, message }
    };
    // The backends write to a path: they draw into a fresh private folder beside the figures
    // (nothing else can have put a link there), and each file is renamed into place, replacing
    // a link at the destination rather than writing through it.
    let dir = base.parent().unwrap_or(Path::new("."));
    let scratch = apparate::safe_write::TempDir::new_in(dir).map_err(io_err(dir))?;
    let (png_tmp, svg_tmp) = (scratch.path().join("f.png"), scratch.path().join("f.svg"));
    {
        let root = crate::crisp::CrispText::new(BitMapBackend::new(&png_tmp, plot.size()))
            .into_drawing_area();
        root.fill(&WHITE).map_err(e2s).map_err(fail(&png))?;
        plot.draw(&root).map_err(fail(&png))?;
        root.present().map_err(e2s).map_err(fail(&png))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, plot.size()).into_drawing_area();
        root.fill(&WHITE).map_err(e2s).map_err(fail(&svg))?;
        plot.draw(&root).map_err(fail(&svg))?;
        root.present().map_err(e2s).map_err(fail(&svg))?;
    }
    let durability = apparate::safe_write::Durability::Flush;
    scratch
        .publish("f.png", &png, durability)
        .map_err(io_err(&png))?;
    scratch
        .publish("f.svg", &svg, durability)
        .map_err(io_err(&svg))?;
    Ok([png, svg])
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Draws a row of legend entries (colour swatch + text) centred in `area`.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let style = font(16);
    let widths: Vec<i32> = entries
        .iter()
        .map(|(t, _, _)| {
            area.estimate_text_size(t, &style)
                .map(|(w, _)| w as i32)
                .unwrap_or(8 * t.len() as i32)
        })
        .collect();
    let total: i32 = widths.iter().map(|w| w + 50).sum();
    let mut x = (w as i32 - total).max(0) / 2;
    let y = h as i32 / 2;
    for ((text, color, dashed), tw) in entries.iter().zip(widths) {
        if *dashed {
            for k in 0..3 {
                area.draw(&PathElement::new(
                    vec![(x + k * 10, y), (x + k * 10 + 6, y)],
                    color.stroke_width(3),
                ))
                .map_err(e2s)?;
            }
        } else {
            area.draw(&Rectangle::new(
                [(x, y - 7), (x + 26, y + 7)],
                color.filled(),
            ))
            .map_err(e2s)?;
        }
        area.draw(&Text::new(
            text.clone(),
            (x + 32, y),
            style.pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        ))
        .map_err(e2s)?;
        x += tw + 50;
    }
    Ok(())
}

/// Grouped bars with min–max error bars: one group per label, one bar per series.
#[derive(Clone, Debug)]
pub struct GroupedBars {
    /// Title.
    pub title: String,
    /// Y-axis description, with unit.
    pub y_desc: String,
    /// X-axis description.
    pub x_desc: String,
    /// Group labels.
    pub groups: Vec<String>,
    /// Short group labels (`#k`, the row of the per-model table), used when the labels do
    /// not fit side by side.
    pub numbers: Vec<String>,
    /// (name, colour index, value per group).
    pub series: Vec<(String, RGBColor, Vec<Spread>)>,
    /// Fixed y range, or `None` for 0 to the data's maximum.
    pub y_range: Option<(f64, f64)>,
}

impl Plot for GroupedBars {
    fn size(&self) -> (u32, u32) {
        (1000, 560)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let root = root.titled(&self.title, font(22)).map_err(e2s)?;
        let (top, body) = root.split_vertically(36);
        let entries: Vec<(String, RGBColor, bool)> = self
            .series
            .iter()
            .map(|(n, c, _)| (n.clone(), *c, false))
            .collect();
        legend(&top, &entries)?;
        let n = self.groups.len().max(1);
        let finite = self
            .series
            .iter()
            .flat_map(|(_, _, v)| v.iter().flat_map(|s| [s.min, s.max, s.median]))
            .filter(|x| x.is_finite());
        let (lo, hi) = finite.fold((0.0f64, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
        let (y0, y1) = self.y_range.unwrap_or((
            if lo < 0.0 { lo * 1.1 } else { 0.0 },
            if hi > 0.0 { hi * 1.1 } else { 1.0 },
        ));
        let (y0, y1) = (y0.min(lo * 1.1), y1.max(hi * 1.05));

        // Labels that would not fit side by side (about 8 px a character) are replaced by the
        // groups' numbers (the `#` column of the per-model tables); plotters 0.3.7 centres
        // rotated tick labels on the axis, so rotating them would overlap the plot.
        let longest = self
            .groups
            .iter()
            .map(|g| g.chars().count())
            .max()
            .unwrap_or(0);
        let numbered = longest * 8 > 880 / n;
        let groups = if numbered && self.numbers.len() == self.groups.len() {
            &self.numbers
        } else {
            &self.groups
        };
        // Even numbers may not all fit: label every `step`-th group then.
        let widest = groups
            .iter()
            .map(|g| g.chars().count())
            .max()
            .unwrap_or(1)
            .max(1);
        let step = if numbered {
            (n * (widest + 1) * 8).div_ceil(880).max(1)
        } else {
            1
        };
        let centres: Vec<f64> = (0..n).step_by(step).map(|i| i as f64).collect();
        let x_desc = if numbered {
            format!("{} (#: row of the per-model table)", self.x_desc)
        } else {
            self.x_desc.clone()
        };
        let mut chart = ChartBuilder::on(&body)
            .margin_right(20)
            .margin_top(8)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(KeyAxis::new(-0.5, n as f64 - 0.5, centres), y0..y1)
            .map_err(e2s)?;
        let fmt = |x: &f64| {
            let i = x.round();
            if i >= 0.0 && (x - i).abs() < 1e-6 {
                groups.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let yfmt = |y: &f64| format!("{y:.0}");
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .y_max_light_lines(1)
            .y_label_formatter(&yfmt)
            .x_desc(&x_desc)
            .y_desc(&self.y_desc)
            .x_label_formatter(&fmt)
            .label_style(font(15))
            .axis_desc_style(font(17));
        mesh.draw().map_err(e2s)?;
        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
        for (si, (_, color, values)) in self.series.iter().enumerate() {
            for (gi, s) in values.iter().enumerate() {
                if !s.median.is_finite() {
                    continue;
                }
                let x0 = gi as f64 - 0.4 + si as f64 * width;
                let x1 = x0 + width * 0.92;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, s.median)],
                        color.filled(),
                    )))
                    .map_err(e2s)?;
                if s.min.is_finite() && s.max.is_finite() && s.max > s.min {
                    let xm = (x0 + x1) / 2.0;
                    let cap = width * 0.2;
                    let lines = [
                        vec![(xm, s.min), (xm, s.max)],
                        vec![(xm - cap, s.min), (xm + cap, s.min)],
                        vec![(xm - cap, s.max), (xm + cap, s.max)],
                    ];
                    chart
                        .draw_series(
                            lines
                                .into_iter()
                                .map(|l| PathElement::new(l, BLACK.stroke_width(2))),
                        )
                        .map_err(e2s)?;
                }
            }
        }
        Ok(())
    }
}

/// Fig. 12: Apparate's and the oracle's median latency wins per CV model.
pub fn fig12(
    groups: Vec<String>,
    numbers: Vec<String>,
    apparate: Vec<Spread>,
    optimal: Vec<Spread>,
) -> GroupedBars {
    GroupedBars {
        title: "Fig. 12: median latency reduction vs. vanilla, CV models".into(),
        y_desc: "median end-to-end latency reduction (%)".into(),
        x_desc: "model (bar: median over videos; error bar: min to max)".into(),
        groups,
        numbers,
        series: vec![
            ("Apparate".into(), APPARATE, apparate),
            ("Optimal (oracle exits)".into(), OTHER, optimal),
        ],
        y_range: Some((0.0, 100.0)),
    }
}

/// Fig. 13: p95 latency of Apparate and vanilla per CV model.
pub fn fig13(
    groups: Vec<String>,
    numbers: Vec<String>,
    apparate: Vec<Spread>,
    vanilla: Vec<Spread>,
) -> GroupedBars {
    GroupedBars {
        title: "Fig. 13: 95th-percentile latency, CV models".into(),
        y_desc: "p95 end-to-end latency (ms)".into(),
        x_desc: "model (bar: median over videos; error bar: min to max)".into(),
        groups,
        numbers,
        series: vec![
            ("Apparate".into(), APPARATE, apparate),
            ("Vanilla".into(), GREY, vanilla),
        ],
        y_range: None,
    }
}

/// One CDF curve: sorted values, sampled.
#[derive(Clone, Debug)]
pub struct Curve {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Dashed (vanilla) or solid (Apparate).
    pub dashed: bool,
    /// (latency ms, cumulative fraction) points.
    pub points: Vec<(f64, f64)>,
}

/// At most `k + 1` points of the empirical CDF of sorted values.
pub fn cdf_points(sorted: &[f64], k: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = (n / k.max(1)).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if pts.last().map(|p| p.1) != Some(1.0) {
        pts.push((sorted[n - 1], 1.0));
    }
    pts
}

/// Fig. 14: latency CDFs, one panel per NLP model.
#[derive(Clone, Debug)]
pub struct CdfPanels {
    /// Title.
    pub title: String,
    /// (panel title, x limit in ms, curves).
    pub panels: Vec<(String, f64, Vec<Curve>)>,
    /// Panels side by side (at least 1).
    pub columns: usize,
}

impl Plot for CdfPanels {
    fn size(&self) -> (u32, u32) {
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1) as u32;
        (if columns == 1 { 700 } else { 1100 }, 60 + 380 * rows)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let root = root.titled(&self.title, font(22)).map_err(e2s)?;
        let columns = self.columns.max(1);
        let rows = self.panels.len().div_ceil(columns).max(1);
        let areas = root.split_evenly((rows, columns));
        for ((title, xmax, curves), area) in self.panels.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(title, font(18))
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..*xmax, 0f64..1.0)
                .map_err(e2s)?;
            chart
                .configure_mesh()
                .x_max_light_lines(1)
                .y_max_light_lines(1)
                .x_desc("end-to-end latency (ms)")
                .y_desc("CDF (fraction of requests)")
                .label_style(font(13))
                .axis_desc_style(font(14))
                .draw()
                .map_err(e2s)?;
            for c in curves {
                let style = c.color.stroke_width(2);
                let pts: Vec<(f64, f64)> =
                    c.points.iter().copied().filter(|p| p.0 <= *xmax).collect();
                let anno = if c.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 8, 5, style))
                        .map_err(e2s)?
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, style))
                        .map_err(e2s)?
                };
                let color = c.color;
                let dashed = c.dashed;
                anno.label(c.name.clone()).legend(move |(x, y)| {
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
                    } else {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    }
                });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4))
                .label_font(font(13))
                .draw()
                .map_err(e2s)?;
        }
        Ok(())
    }
}

/// One line of `batches.jsonl` (only the fields the timeline needs).
#[derive(Clone, Debug, Deserialize)]
pub struct BatchLine {
    /// Batch number, from 1.
    pub batch: u64,
    /// Active ramps.
    pub ramp_ids: Vec<i64>,
    /// Their thresholds.
    pub thresholds: Vec<f64>,
}

impl BatchLine {
    /// Parses the worker's own layout (`{"batch":B,"n":..,"bs":..,"ramp_ids":[..],
    /// "thresholds":[..],...}`) without a JSON parser; `None` for anything else (the caller
    /// then uses serde_json, which also gives the error message).
    pub fn fast(line: &str) -> Option<BatchLine> {
        fn list<T: std::str::FromStr>(s: &str) -> Option<Vec<T>> {
            if s.is_empty() {
                return Some(Vec::new());
            }
            s.split(',').map(|x| x.parse().ok()).collect()
        }
        let rest = line.strip_prefix("{\"batch\":")?;
        let (batch, rest) = rest.split_once(',')?;
        let i = rest.find("\"ramp_ids\":[")?;
        let (ids, rest) = rest[i + 12..].split_once(']')?;
        let rest = rest.strip_prefix(",\"thresholds\":[")?;
        let (th, _) = rest.split_once(']')?;
        let b = BatchLine {
            batch: batch.parse().ok()?,
            ramp_ids: list(ids)?,
            thresholds: list(th)?,
        };
        (b.ramp_ids.len() == b.thresholds.len()).then_some(b)
    }
}

/// The largest threshold magnitude a timeline accepts (real ones are confidences in [0, 1]).
const MAX_THRESHOLD: f64 = 1e6;

/// Runs of `(batch, threshold)` points, one per stretch of batches a ramp was active.
pub type Segments = Vec<Vec<(f64, f64)>>;

/// The controller's state over batches, reduced for drawing.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Title.
    pub title: String,
    /// Number of batches.
    pub batches: u64,
    /// Number of candidate ramp sites `R` (y range of the top panel).
    pub sites: i64,
    /// Per ramp id: intervals `[from, to]` (batches) during which it was active.
    pub active: Vec<(i64, Vec<(u64, u64)>)>,
    /// Per ramp id: threshold segments (each a run of points while active).
    pub thresholds: Vec<(i64, Segments)>,
}

impl Timeline {
    /// Builds the timeline from `batches.jsonl` contents, keeping at most about `buckets`
    /// threshold points per ramp (the last value of each bucket of batches).
    pub fn from_jsonl(
        title: String,
        sites: i64,
        text: &str,
        buckets: u64,
    ) -> Result<Timeline, String> {
        use std::collections::BTreeMap;
        let mut lines = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let b: BatchLine = match BatchLine::fast(l) {
                Some(b) => b,
                None => serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?,
            };
            // (The fast path reads `NaN` and `inf` too; a figure must never show them.)
            if let Some((r, _)) = b
                .ramp_ids
                .iter()
                .zip(&b.thresholds)
                .find(|(_, t)| !(t.is_finite() && t.abs() <= MAX_THRESHOLD))
            {
                return Err(format!(
                    "line {}: the threshold of ramp {r} is not a finite number in [-10^6, 10^6]",
                    i + 1
                ));
            }
            lines.push(b);
        }
        let total = lines.last().map_or(0, |b| b.batch);
        let bucket = (total / buckets.max(1)).max(1);
        let mut open: BTreeMap<i64, u64> = BTreeMap::new();
        let mut active: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
        let mut segs: BTreeMap<i64, Segments> = BTreeMap::new();
        let mut prev_batch = 0u64;
        for b in &lines {
            let now: std::collections::BTreeSet<i64> = b.ramp_ids.iter().copied().collect();
            let closed: Vec<i64> = open.keys().copied().filter(|r| !now.contains(r)).collect();
            for r in closed {
                if let Some(from) = open.remove(&r) {
                    active.entry(r).or_default().push((from, prev_batch));
                }
            }
            for (r, t) in b.ramp_ids.iter().zip(&b.thresholds) {
                let s = segs.entry(*r).or_default();
                if !open.contains_key(r) {
                    open.insert(*r, b.batch);
                    s.push(Vec::new());
                }
                if let Some(seg) = s.last_mut() {
                    let point = (b.batch as f64, *t);
                    match seg.last_mut() {
                        Some(last)
                            if (last.0 as u64).saturating_sub(1) / bucket
                                == b.batch.saturating_sub(1) / bucket =>
                        {
                            *last = point
                        }
                        _ => seg.push(point),
                    }
                }
            }
            prev_batch = b.batch;
        }
        for (r, from) in open {
            active.entry(r).or_default().push((from, prev_batch));
        }
        Ok(Timeline {
            title,
            batches: total,
            sites,
            active: active.into_iter().collect(),
            thresholds: segs.into_iter().collect(),
        })
    }
}

/// The light halves of tab20's pairs: after [`PALETTE`]'s ten, ramps 11 to 20 by rank.
const PALETTE_LIGHT: [RGBColor; 10] = [
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

impl Timeline {
    fn color(&self, r: i64) -> RGBColor {
        let rank = self.active.iter().position(|(id, _)| *id == r).unwrap_or(0);
        // tab10, then its light variants: distinct colours for up to 20 ramps.
        let rank = rank % (2 * PALETTE.len());
        if rank < PALETTE.len() {
            PALETTE[rank]
        } else {
            PALETTE_LIGHT[rank - PALETTE.len()]
        }
    }
}

impl Plot for Timeline {
    fn size(&self) -> (u32, u32) {
        (1000, 620)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let root = root.titled(&self.title, font(19)).map_err(e2s)?;
        let (top, bottom) = root.split_vertically(290);
        let x1 = self.batches.max(1) as f64;
        let y_top = self.sites.max(1) as f64;
        let mut chart = ChartBuilder::on(&top)
            .caption("active ramps (colour = ramp site)", font(15))
            .margin(10)
            .margin_right(25)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x1, -0.5f64..y_top + 0.5)
            .map_err(e2s)?;
        let int = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .x_max_light_lines(1)
            .y_max_light_lines(1)
            .x_label_formatter(&int)
            .y_label_formatter(&int)
            .x_desc("batch")
            .y_desc("ramp site (0 = earliest)")
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()
            .map_err(e2s)?;
        for (r, ivs) in &self.active {
            let c = self.color(*r);
            chart
                .draw_series(ivs.iter().map(|&(a, b)| {
                    Rectangle::new(
                        [
                            (a as f64 - 0.5, *r as f64 - 0.3),
                            (b as f64 + 0.5, *r as f64 + 0.3),
                        ],
                        c.filled(),
                    )
                }))
                .map_err(e2s)?;
        }
        let (tmin, tmax) = self
            .thresholds
            .iter()
            .flat_map(|(_, s)| s.iter().flatten().map(|p| p.1))
            .filter(|t| t.is_finite())
            .fold((0.0f64, 0.0f64), |(a, b), t| (a.min(t), b.max(t)));
        let mut chart = ChartBuilder::on(&bottom)
            .caption("thresholds of the active ramps (same colours)", font(15))
            .margin(10)
            .margin_right(25)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x1, (tmin * 1.08)..(tmax * 1.08).max(0.05))
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .x_max_light_lines(1)
            .y_max_light_lines(1)
            .x_label_formatter(&int)
            .x_desc("batch")
            .y_desc("exit threshold")
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()
            .map_err(e2s)?;
        for (r, segments) in &self.thresholds {
            let c = self.color(*r);
            for seg in segments {
                if seg.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(seg[0], 2, c.filled())))
                        .map_err(e2s)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(seg.iter().copied(), c.stroke_width(1)))
                        .map_err(e2s)?;
                }
            }
        }
        Ok(())
    }
}

/// The exit-point distribution of one task (share of requests per exit point).
#[derive(Clone, Debug)]
pub struct ExitBars {
    /// Title.
    pub title: String,
    /// The final exit's id `R`.
    pub final_exit: i32,
    /// (exit point, share 0–1).
    pub shares: Vec<(i32, f64)>,
}

impl Plot for ExitBars {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let root = root.titled(&self.title, font(19)).map_err(e2s)?;
        let r = self.final_exit.max(0);
        let step = (r / 25 + 1).max(1);
        let mut keys: Vec<f64> = (0..r).step_by(step as usize).map(f64::from).collect();
        if keys
            .last()
            .is_some_and(|&k| f64::from(r) - k < f64::from(step) * 0.6)
        {
            keys.pop();
        }
        keys.push(f64::from(r));
        let ymax = self.shares.iter().map(|s| s.1 * 100.0).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(25)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                KeyAxis::new(-0.6, f64::from(r) + 0.6, keys),
                0f64..(ymax * 1.1).clamp(1.0, 100.0),
            )
            .map_err(e2s)?;
        let fmt = |x: &f64| {
            if (x - f64::from(r)).abs() < 1e-6 {
                format!("R={r}")
            } else {
                format!("{}", x.round() as i64)
            }
        };
        let pct = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_max_light_lines(1)
            .y_label_formatter(&pct)
            .x_desc("exit point (ramp site; R = final layer)")
            .y_desc("requests (%)")
            .x_label_formatter(&fmt)
            .label_style(font(13))
            .axis_desc_style(font(15))
            .draw()
            .map_err(e2s)?;
        chart
            .draw_series(self.shares.iter().map(|&(p, s)| {
                let c = if p == self.final_exit { GREY } else { APPARATE };
                Rectangle::new(
                    [(f64::from(p) - 0.4, 0.0), (f64::from(p) + 0.4, s * 100.0)],
                    c.filled(),
                )
            }))
            .map_err(e2s)?;
        Ok(())
    }
}
