//! Bar charts of sign-ins and failures, drawn on the server as inline SVG.

use crate::domain::stats::Bucket;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const PAD_LEFT: f64 = 36.0;
const PAD_BOTTOM: f64 = 24.0;
const PAD_TOP: f64 = 12.0;

/// An SVG bar chart of `buckets`: a pair of bars (sign-ins, failures) per bucket, the
/// highest count on the axis, and every `label_every`th bucket labelled with `label`.
pub fn bars(
    id: &str,
    title: &str,
    buckets: &[Bucket],
    label: impl Fn(chrono::DateTime<chrono::Utc>) -> String,
    label_every: usize,
) -> String {
    let count = buckets.len().max(1);
    let top = buckets
        .iter()
        .map(|b| b.sign_ins.max(b.failures))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - PAD_LEFT;
    let plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP;
    let slot = plot_w / count as f64;
    let bar = (slot * 0.4).max(1.0);
    let total_in: u64 = buckets.iter().map(|b| b.sign_ins).sum();
    let total_failed: u64 = buckets.iter().map(|b| b.failures).sum();
    let mut svg = format!(
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"{id}-title\" preserveAspectRatio=\"none\" \
         data-sign-ins=\"{total_in}\" data-failures=\"{total_failed}\">\
         <title id=\"{id}-title\">{title}: {total_in} sign-ins, {total_failed} failures</title>"
    );
    let base = HEIGHT - PAD_BOTTOM;
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{PAD_LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\"/>\
         <text class=\"tick\" x=\"{x}\" y=\"{y}\" text-anchor=\"end\">{top}</text>\
         <text class=\"tick\" x=\"{x}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        x = PAD_LEFT - 4.0,
        y = PAD_TOP + 10.0,
    ));
    for (i, bucket) in buckets.iter().enumerate() {
        let start = &bucket.start;
        let x = PAD_LEFT + slot * i as f64 + slot * 0.1;
        for (j, (value, class)) in [(bucket.sign_ins, "ok"), (bucket.failures, "bad")]
            .into_iter()
            .enumerate()
        {
            let h = plot_h * value as f64 / top as f64;
            svg.push_str(&format!(
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\"><title>{}: {value}</title></rect>",
                x + bar * j as f64,
                base - h,
                label(*start),
            ));
        }
        if label_every > 0 && i % label_every == 0 {
            svg.push_str(&format!(
                "<text class=\"tick\" x=\"{:.1}\" y=\"{}\">{}</text>",
                x,
                HEIGHT - 6.0,
                label(*start)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}
