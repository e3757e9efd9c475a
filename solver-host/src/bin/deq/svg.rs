//! A small SVG line plot with a logarithmic y axis, for residual traces.

use std::fmt::Write as _;

use solver_host::solver_core::Real;

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// Plots each named series (y > 0 on a log scale; other points are skipped) against
/// its index + 1.
pub fn plot<T: Real>(title: &str, series: &[(&str, &[T])]) -> String {
    let ys = series.iter().flat_map(|(_, s)| s.iter()).filter(|v| v.is_finite() && **v > T::ZERO);
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        let l = v.to_f64().log10();
        (lo.min(l), hi.max(l))
    });
    if !lo.is_finite() {
        (lo, hi) = (-1.0, 0.0);
    }
    let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
    let n = series.iter().map(|(_, s)| s.len()).max().unwrap_or(1).max(2) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |i: f64| LEFT + (i - 1.0) / (n - 1.0) * pw;
    let py = |l: f64| TOP + (hi - l) / (hi - lo) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid and y labels at every decade.
    let mut d = lo;
    while d <= hi + 1e-9 {
        let y = py(d);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            LEFT + pw
        );
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{d}</text>"#, LEFT - 6.0, y + 4.0);
        d += 1.0;
    }
    // x ticks.
    let step = ((n / 8.0).ceil() as usize).max(1);
    for i in (1..=n as usize).step_by(step) {
        let x = px(i as f64);
        let _ = writeln!(s, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{i}</text>"#, TOP + ph + 18.0);
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">f-evaluations</text>
<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">relative residual</text>"#,
        LEFT + pw / 2.0,
        H - 10.0,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    for (k, (name, ys)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > T::ZERO)
            .map(|(i, v)| format!("{:.1},{:.1}", px(i as f64 + 1.0), py(v.to_f64().log10())))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let ly = TOP + 20.0 + 20.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{} ({} evals)</text>"#,
            LEFT + pw + 10.0,
            LEFT + pw + 30.0,
            LEFT + pw + 36.0,
            ly + 4.0,
            escape(name),
            ys.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
