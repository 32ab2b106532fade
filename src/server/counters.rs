//! HTTP requests counted by route and status: the layer that counts them and the first block
//! of /metrics. The engine's own counters (tokens, slots, latencies) are `engine::metrics`'s
//! and follow this block.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Requests by endpoint and status code.
#[derive(Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(String, u16), u64>>,
}

impl RequestCounts {
    pub fn count(&self, endpoint: &str, status: u16) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((endpoint.to_string(), status)).or_insert(0) += 1;
    }

    /// The counts as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP duo_selfhost_requests_total HTTP requests by endpoint and status.\n# TYPE duo_selfhost_requests_total counter"
        );
        for ((endpoint, status), n) in self.counts.lock().unwrap_or_else(|e| e.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "duo_selfhost_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}

/// Counts every request once its response is known; a path that is no route counts as `other`.
pub(super) async fn count_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = match request.uri().path() {
        p
        @ ("/v1/models" | "/v1/chat/completions" | "/v1/completions" | "/health" | "/metrics") => p,
        _ => "other",
    }
    .to_string();
    let response = next.run(request).await;
    state.requests.count(&endpoint, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_listed_by_endpoint_then_status() {
        let counts = RequestCounts::default();
        counts.count("/v1/completions", 200);
        counts.count("/health", 503);
        counts.count("/v1/completions", 200);
        let text = counts.render();
        assert!(text.starts_with("# HELP duo_selfhost_requests_total "));
        let health = text
            .find("{endpoint=\"/health\",status=\"503\"} 1")
            .unwrap();
        let completions = text
            .find("{endpoint=\"/v1/completions\",status=\"200\"} 2")
            .unwrap();
        assert!(health < completions);
    }
}
