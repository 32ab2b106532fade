//! The integration tests, one module per area, built as one test binary: each binary links
//! llama.cpp and every crate, so one binary instead of sixteen saves minutes of linking and
//! gigabytes of disk. Run one area with `cargo test --test integration -- serve::`.

mod support;

mod bench_cli;
mod bundle;
mod cli;
mod doctor;
mod doctor_hostile;
mod faults;
mod gitlab_api;
mod gitlab_rb;
mod gitlab_rb_props;
mod helm;
mod image_tag;
mod install;
mod models;
mod secrets_audit;
mod serve;
mod upgrade;
