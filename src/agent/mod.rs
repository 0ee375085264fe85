//! The agent (`mtls-prober run`): scheduled edges, metrics, endpoints, live reloads.

pub mod serve;
pub mod status_page;
pub mod view;
