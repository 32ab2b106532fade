//! Helpers shared by the integration tests (each test file includes this with `mod support;`).

#![allow(dead_code)]

pub mod gitlab_fixture;
