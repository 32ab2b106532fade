//! `install --target helm` and `upgrade --target helm`: the seed's Helm steps, driven through
//! the real helm and kubectl. Each command resolves its inputs (`inputs`) and checks the tools,
//! the cluster and the certificate (`checks`); then one [`Rollout`] shows the plan (`--dry-run`)
//! or runs it step by step (`steps`), records the state, points GitLab at the gateway and
//! reports (`report`).

mod checks;
mod inputs;
mod install;
mod report;
mod steps;
mod upgrade;

pub use install::install;
pub use upgrade::upgrade;

use std::path::{Path, PathBuf};

use crate::error::ExitStatus;
use crate::gitlab_config::{self, PointOutcome, PointRequest};
use crate::helm::{self, GatewayValues, PlanInput, Step};
use crate::output::Printer;
use crate::state::{self, GitlabState, State};
use checks::{Cluster, Tools};
use inputs::{Deployment, GitlabTarget};
use steps::{run_steps_keeping_values, ValuesFile};

/// Deadline for quick queries (versions, context, reading a release).
const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Deadline for each GitLab API call.
const GITLAB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Which command a [`Rollout`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Install,
    Upgrade,
}

impl Action {
    /// The word the report opens with.
    fn verb(self) -> &'static str {
        match self {
            Action::Install => "installed",
            Action::Upgrade => "upgraded",
        }
    }

    /// Install creates the namespace; an upgrade's exists already.
    fn creates_namespace(self) -> bool {
        self == Action::Install
    }
}

/// What install and upgrade do alike once the values are chosen: plan the steps, show them
/// (`--dry-run`) or run them, record the gateway, point GitLab at it and report.
struct Rollout<'a> {
    action: Action,
    target: &'a Deployment<'a>,
    values: GatewayValues,
    /// The values file as helm reads it.
    rendered: String,
    gitlab: &'a GitlabTarget<'a>,
}

impl<'a> Rollout<'a> {
    fn new(
        action: Action,
        target: &'a Deployment<'a>,
        values: GatewayValues,
        gitlab: &'a GitlabTarget<'a>,
    ) -> anyhow::Result<Self> {
        let rendered = helm::render_values(&target.release, &values)?;
        Ok(Rollout {
            action,
            target,
            values,
            rendered,
            gitlab,
        })
    }

    fn values_out(&self) -> Option<&Path> {
        self.target.flags.values_out.as_deref()
    }

    fn steps(&self, values_file: &Path) -> Vec<Step> {
        helm::plan(&PlanInput {
            release: &self.target.release,
            values_file,
            tls: self.target.tls.as_ref(),
            tls_secret: &self.values.tls_secret,
            timeout_secs: self.target.flags.helm_timeout,
            create_namespace: self.action.creates_namespace(),
            chart: &self.target.chart,
        })
    }

    /// `--dry-run`: the commands with the values file they would be given, and what pointing
    /// GitLab will do. Nothing touches the cluster.
    fn show(&self, printer: &Printer) -> anyhow::Result<()> {
        let shown_path = self
            .values_out()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<temporary values file>"));
        let then = report::point_note(&self.gitlab.version, &self.values);
        report::show_plan(
            &self.steps(&shown_path),
            &self.target.release,
            &self.values,
            self.values_out(),
            &then,
            printer,
        )
    }

    /// Runs the steps, then records the gateway in `recorded` (with `gitlab_rb` as GitLab's
    /// gitlab.rb), points GitLab at it and reports.
    fn apply(
        &self,
        state_path: &Path,
        mut recorded: State,
        gitlab_rb: Option<PathBuf>,
        cluster: &Cluster,
        tools: &Tools,
        printer: &Printer,
    ) -> anyhow::Result<ExitStatus> {
        let values_file = ValuesFile::write(self.values_out(), &self.rendered)?;
        run_steps_keeping_values(&self.steps(values_file.path()), values_file, printer)?;

        // The gateway runs: record it before GitLab is pointed at it, so a refusal there leaves
        // an accurate state file and a rerun changes nothing in the cluster.
        recorded.gitlab = Some(GitlabState {
            url: self.values.gitlab_url.clone(),
            version: self.gitlab.version.to_string(),
            gitlab_rb,
        });
        recorded.gateway = Some(report::gateway_state(
            &self.target.release,
            &self.values,
            &self.rendered,
        ));
        state::save(state_path, &recorded)?;

        // An upgrade points GitLab again too: upgrading GitLab can clear the gateway URL
        // (reference 2.4), and setting it again changes nothing when it is still there.
        let pointed = point_gitlab(self.gitlab, &self.values, printer)?;

        report::report_done(
            self.action.verb(),
            &self.target.release,
            &self.values,
            cluster,
            tools,
            &pointed,
            self.values_out(),
            state_path,
            printer,
        );
        Ok(ExitStatus::Success)
    }
}

/// Points GitLab at `https://<gateway domain>` the version-aware way (gitlab.rb up to 17.8,
/// the application setting from 17.9); what is left to do by hand is printed.
fn point_gitlab(
    gitlab: &GitlabTarget,
    values: &GatewayValues,
    printer: &Printer,
) -> anyhow::Result<PointOutcome> {
    // The ingress serves HTTPS on 443; written out, because a URL without a port means the
    // Docker gateway's 5052 to gitlab_config.
    let gateway_url = format!("{}:443", values.gateway_url());
    let request = PointRequest {
        gateway_url: &gateway_url,
        gitlab_version: &gitlab.version,
        gitlab_rb: Some(gitlab.gitlab_rb),
        client: Some(&gitlab.client),
        allow_localhost: false,
        // Reconfigure where omnibus is installed; elsewhere the edit is left for the
        // administrator to apply, and the outcome says so.
        reconfigure: crate::gitlab_rb::find_gitlab_ctl().is_ok(),
        dry_run: false,
    };
    let outcome = crate::commands::runtime()?
        .block_on(gitlab_config::point_gitlab_at_gateway(&request, printer))?;
    for step in &outcome.manual_steps {
        printer.warn(format!("still to do by hand: {step}"));
    }
    Ok(outcome)
}
