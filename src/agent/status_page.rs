//! The status page at `/`: server-rendered HTML, no external assets, no JavaScript.

use super::view::{AgentView, EdgeView};

/// Renders the page.
pub fn render(agent: &AgentView, edges: &[EdgeView]) -> String {
    let _ = (agent, edges);
    String::from("<!doctype html><title>mtls-prober</title>")
}
