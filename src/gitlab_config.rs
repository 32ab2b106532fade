//! Points GitLab at the gateway, aware of the version: gitlab.rb env up to 17.8, the
//! application setting through GraphQL from 17.9.
