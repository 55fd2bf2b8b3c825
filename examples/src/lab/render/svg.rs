//! Both runs as a picture (`--svg`): the PID-to-PID traffic as two heat maps side by side
//! (green cells are bytes that stayed inside a PID, red ones bytes that crossed PIDs), and
//! below them the completion times of both runs as CDFs, so that one sees at a glance
//! whether anyone was made slower.

use super::mib;
use crate::lab::{LabReport, RunFigures};

const CELL: f64 = 64.0;
/// Room left of a heat map for the row labels.
const LABELS: f64 = 60.0;
/// Height of the titles above a heat map.
const TITLES: f64 = 92.0;
/// The CDF's plot area.
const PLOT_H: f64 = 180.0;
const ALTO_COLOR: &str = "seagreen";
const BASELINE_COLOR: &str = "firebrick";

/// Both runs as one SVG document.
pub fn svg(r: &LabReport) -> String {
    let n = r.pids.len();
    // Each panel is wide enough for its titles, whatever the number of PIDs.
    let panel = (LABELS + n as f64 * CELL).max(380.0);
    let width = 2.0 * panel + 60.0;
    let maps_bottom = TITLES + n as f64 * CELL + 30.0;
    let height = maps_bottom + PLOT_H + 110.0;
    let max = [&r.alto, &r.baseline]
        .iter()
        .flat_map(|f| f.matrix.pairs().map(|(_, _, b)| b))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    s += r#"<rect width="100%" height="100%" fill="white"/>"#;
    for (k, (title, f)) in [
        ("ALTO (virtual tracker)", &r.alto),
        ("baseline (random peers)", &r.baseline),
    ]
    .iter()
    .enumerate()
    {
        let left = 20.0 + k as f64 * (panel + 20.0);
        let (x0, y0) = (left + LABELS, TITLES);
        s +=
            &format!(r#"<text x="{left}" y="24" font-size="15" font-weight="bold">{title}</text>"#);
        s += &format!(
            r#"<text x="{left}" y="44">{:.0}% of bytes inside PIDs; cross-PID {}</text>"#,
            f.localization * 100.0,
            mib(f.cross_pid_bytes)
        );
        s += &format!(
            r#"<text x="{left}" y="62" fill="dimgray">MiB sent from PID (row) to PID (column)</text>"#
        );
        for (i, from) in r.pids.iter().enumerate() {
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="end">{from}</text>"#,
                x0 - 6.0,
                y0 + i as f64 * CELL + CELL / 2.0 + 4.0
            );
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{from}</text>"#,
                x0 + i as f64 * CELL + CELL / 2.0,
                y0 - 8.0
            );
            for (j, to) in r.pids.iter().enumerate() {
                let v = f.matrix.bytes(from, to) as f64;
                let t = (v / max).sqrt();
                let (red, green, blue) = if i == j {
                    (255.0 - 200.0 * t, 255.0 - 80.0 * t, 255.0 - 200.0 * t)
                } else {
                    (255.0 - 30.0 * t, 255.0 - 200.0 * t, 255.0 - 200.0 * t)
                };
                s += &format!(
                    r#"<rect x="{}" y="{}" width="{CELL}" height="{CELL}" fill="rgb({:.0},{:.0},{:.0})" stroke="silver"/><text x="{}" y="{}" text-anchor="middle">{:.1}</text>"#,
                    x0 + j as f64 * CELL,
                    y0 + i as f64 * CELL,
                    red,
                    green,
                    blue,
                    x0 + j as f64 * CELL + CELL / 2.0,
                    y0 + i as f64 * CELL + CELL / 2.0 + 4.0,
                    v / (1 << 20) as f64
                );
            }
        }
    }
    s += &cdf(r, 20.0 + LABELS, maps_bottom + 30.0, width - 60.0 - LABELS);
    s += &format!(
        r#"<text x="20" y="{}" fill="dimgray">green: bytes that stayed inside a PID; red: bytes that crossed PIDs. Lower bound of cross-PID bytes: {}.</text>"#,
        height - 16.0,
        mib(r.lower_bound_bytes)
    );
    s += "</svg>\n";
    s
}

/// The completion times of both runs as step CDFs in a plot at (`x0`, `y0`), `w` wide.
fn cdf(r: &LabReport, x0: f64, y0: f64, w: f64) -> String {
    let runs: [(&str, &RunFigures, &str); 2] = [
        ("ALTO", &r.alto, ALTO_COLOR),
        ("baseline", &r.baseline, BASELINE_COLOR),
    ];
    let t_max = runs
        .iter()
        .flat_map(|(_, f, _)| f.completion_s.iter().copied())
        .fold(1.0_f64, f64::max)
        .ceil();
    let x = |t: f64| x0 + w * t / t_max;
    let y = |share: f64| y0 + PLOT_H * (1.0 - share);
    let mut s = format!(
        r#"<text x="{}" y="{}" font-size="15" font-weight="bold">Completion times: share of clients done after t seconds</text>"#,
        x0 - LABELS,
        y0 - 12.0
    );
    s += &format!(
        r#"<rect x="{x0}" y="{y0}" width="{w}" height="{PLOT_H}" fill="none" stroke="silver"/>"#
    );
    for k in 0..=4 {
        let share = k as f64 / 4.0;
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="end">{:.0}%</text>"#,
            x0 - 6.0,
            y(share) + 4.0,
            share * 100.0
        );
        let t = t_max * k as f64 / 4.0;
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="middle">{t:.1} s</text>"#,
            x(t),
            y0 + PLOT_H + 16.0
        );
    }
    for (i, (name, f, color)) in runs.iter().enumerate() {
        // Each run's share is of its own clients: one that never completed keeps it
        // under 100%.
        let total = f.clients.max(1) as f64;
        let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
        for (k, &t) in f.completion_s.iter().enumerate() {
            points += &format!(
                " {:.1},{:.1} {:.1},{:.1}",
                x(t),
                y(k as f64 / total),
                x(t),
                y((k + 1) as f64 / total)
            );
        }
        points += &format!(
            " {:.1},{:.1}",
            x(t_max),
            y(f.completion_s.len() as f64 / total)
        );
        s += &format!(
            r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>"#
        );
        s += &format!(
            r#"<text x="{}" y="{}" fill="{color}">{name}: p50 {:.1} s, p95 {:.1} s, {}/{} complete</text>"#,
            x0 + 10.0,
            y0 + 18.0 + 16.0 * i as f64,
            f.completion(0.5),
            f.completion(0.95),
            f.completed,
            f.clients
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_do_not_overlap_and_both_cdfs_are_drawn() {
        let mut r = LabReport {
            alto: RunFigures::default(),
            baseline: RunFigures::default(),
            lower_bound_bytes: 3,
            pids: vec!["PID1".into(), "PID2".into()],
            file_bytes: 1,
        };
        for (f, t) in [(&mut r.alto, 1.0), (&mut r.baseline, 2.0)] {
            f.clients = 1;
            f.add_completion("127.1.0.10".into(), t);
            f.finish();
        }
        let text = svg(&r);
        let x_of = |title: &str| -> f64 {
            let at = text.find(title).unwrap();
            let tag = &text[text[..at].rfind("<text").unwrap()..at];
            let x = tag.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
            x.parse().unwrap()
        };
        let (a, b) = (
            x_of("ALTO (virtual tracker)"),
            x_of("baseline (random peers)"),
        );
        // A 15 px bold title of 23 characters is under 300 px wide.
        assert!(b - a >= 300.0, "titles {a} and {b} too close");
        assert_eq!(text.matches("<polyline").count(), 2);
        assert!(text.contains("ALTO: p50 1.0 s") && text.contains("baseline: p50 2.0 s"));
    }
}
