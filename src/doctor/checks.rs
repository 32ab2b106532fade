//! Every check doctor knows, in the order it prints them: the chain from GitLab's side to the
//! model. A check comes after those it waits for.

use super::{gateway, model, Check};

pub static CHECKS: &[Check] = &[
    Check {
        id: "gateway.healthz",
        title: "AI Gateway answers /monitoring/healthz",
        needs: &[],
        after: &[],
        run: gateway::healthz,
    },
    Check {
        id: "gateway.tls",
        title: "AI Gateway certificate valid and trusted",
        needs: &[],
        after: &[],
        run: gateway::tls,
    },
    Check {
        id: "model.endpoint",
        title: "Model endpoint ends in /v1",
        needs: &[],
        after: &[],
        run: model::endpoint,
    },
    Check {
        id: "model.models",
        title: "Model served under its identifier",
        needs: &[],
        after: &[],
        run: model::models,
    },
    Check {
        id: "model.chat",
        title: "Model answers a one-token chat completion",
        needs: &["model.endpoint", "model.models"],
        after: &[],
        run: model::chat,
    },
    Check {
        id: "model.fim",
        title: "Model completes code as the gateway asks (Codestral style)",
        needs: &["model.endpoint", "model.models"],
        after: &[],
        run: model::fim,
    },
    Check {
        id: "model.family",
        title: "Model approved for the features it serves",
        needs: &[],
        after: &["model.models"],
        run: model::family,
    },
    Check {
        id: "bedrock.identifier",
        title: "Bedrock identifier is an inference profile",
        needs: &[],
        after: &[],
        run: model::bedrock_identifier,
    },
    Check {
        id: "bedrock.credentials",
        title: "Bedrock credentials in the gateway container",
        needs: &[],
        after: &[],
        run: model::bedrock_credentials,
    },
];
