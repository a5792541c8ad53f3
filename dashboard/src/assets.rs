//! The page and the chart library, embedded in the binary (see `assets/VENDORED.md`).

/// The dashboard page: HTML with inline CSS and script, no build step.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// uPlot 1.6.32 (MIT), the one chart library.
pub const UPLOT_JS: &str = include_str!("../assets/uPlot.iife.min.js");
/// uPlot's stylesheet.
pub const UPLOT_CSS: &str = include_str!("../assets/uPlot.min.css");
