//! PID-to-PID traffic of both runs as two heat maps side by side (`--svg`): green cells are
//! bytes that stayed inside a PID, red ones bytes that crossed PIDs.

use super::mib;
use crate::lab::LabReport;

/// PID-to-PID traffic of both runs as two heat maps side by side.
pub fn svg(r: &LabReport) -> String {
    let n = r.pids.len();
    let cell = 64.0;
    let margin = 80.0;
    let width = 2.0 * (margin + n as f64 * cell) + 60.0;
    let height = margin + n as f64 * cell + 70.0;
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
        let x0 = 20.0 + k as f64 * (margin + n as f64 * cell + 20.0) + margin - 20.0;
        let y0 = margin;
        s += &format!(
            r#"<text x="{}" y="24" font-size="15" font-weight="bold">{title}: {:.0}% of bytes inside PIDs</text>"#,
            x0 - margin + 20.0,
            f.localization * 100.0
        );
        s += &format!(
            r#"<text x="{}" y="46" fill="dimgray">MiB sent from PID (row) to PID (column)</text>"#,
            x0 - margin + 20.0
        );
        for (i, from) in r.pids.iter().enumerate() {
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="end">{from}</text>"#,
                x0 - 6.0,
                y0 + i as f64 * cell + cell / 2.0 + 4.0
            );
            s += &format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{from}</text>"#,
                x0 + i as f64 * cell + cell / 2.0,
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
                    r#"<rect x="{}" y="{}" width="{cell}" height="{cell}" fill="rgb({:.0},{:.0},{:.0})" stroke="silver"/><text x="{}" y="{}" text-anchor="middle">{:.1}</text>"#,
                    x0 + j as f64 * cell,
                    y0 + i as f64 * cell,
                    red,
                    green,
                    blue,
                    x0 + j as f64 * cell + cell / 2.0,
                    y0 + i as f64 * cell + cell / 2.0 + 4.0,
                    v / (1 << 20) as f64
                );
            }
        }
    }
    s += &format!(
        r#"<text x="20" y="{}" fill="dimgray">green: bytes that stayed inside a PID; red: bytes that crossed PIDs. Lower bound of cross-PID bytes: {}.</text>"#,
        height - 16.0,
        mib(r.lower_bound_bytes)
    );
    s += "</svg>\n";
    s
}
