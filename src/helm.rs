//! Installs and upgrades the gateway with the AI Gateway Helm chart by driving the real
//! helm and kubectl; renders the values file from templates/.
