//! The main crate's gitlab.rb lexer and env reader/editor (pure text, no I/O).

#[path = "../../src/gitlab_rb/lexer.rs"]
mod lexer;

#[path = "../../src/gitlab_rb/env.rs"]
pub mod env;
