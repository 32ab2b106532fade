//! The GitLab REST and GraphQL client: metadata, readiness, licence, feature flags and the
//! Duo gateway URL setting. The token is sent as PRIVATE-TOKEN and never printed.
