//! Installs and upgrades the gateway with the AI Gateway Helm chart by driving the real
//! helm and kubectl. The values file is `values`, the checks of names and tool versions
//! `checks`, the commands `plan`; running them is `exec`, checking the certificate is `tls`.
//! Takes plain values, never clap types.

pub mod exec;
pub mod tls;

mod checks;
mod plan;
mod values;

pub use checks::{
    check_domain, check_release, parse_helm_version, parse_kubectl_version, split_image,
};
pub use plan::{
    chart_archive_identity, fix_for_output, grace, plan, pull_command, stored_chart_path,
    ChartSource, PlanInput, Step, TlsFiles,
};
pub use values::{gitlab_api_url, render_values, values_from_release, GatewayValues, KeptValues};

use serde::Serialize;

/// The name the seed gives the chart repository in helm's configuration.
pub const REPO_NAME: &str = "ai-gateway";
/// The AI Gateway chart repository (install doc; reference 2.4).
pub const REPO_URL: &str =
    "https://gitlab.com/api/v4/projects/gitlab-org%2fcharts%2fai-gateway-helm-chart/packages/helm/devel";
/// The chart, as `repository/name`.
pub const CHART: &str = "ai-gateway/ai-gateway";
/// The chart's name in its repository.
pub const CHART_NAME: &str = "ai-gateway";
/// The chart version `install --target helm` uses unless told otherwise.
pub const DEFAULT_CHART_VERSION: &str = "0.5.0";
/// The oldest helm the install doc supports.
pub const MIN_HELM: semver::Version = semver::Version::new(3, 11, 0);
/// Kubernetes field manager for what duo-selfhost applies.
pub const FIELD_MANAGER: &str = "duo-selfhost";

/// Where the gateway goes in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart_version: String,
}

impl Release {
    /// The TLS secret the ingress uses; the seed's `ai-gateway-tls` for the default release.
    pub fn tls_secret(&self) -> String {
        format!("{}-tls", self.name)
    }
}
