//! The main crate's gitlab.rb lexer, parser and env reader/editor (pure text, no I/O), under
//! the same module names as in the main crate.

#[path = "../../src/gitlab_rb/lexer.rs"]
mod lexer;

#[path = "../../src/gitlab_rb/parse.rs"]
mod parse;

#[path = "../../src/gitlab_rb/plan.rs"]
pub mod plan;

#[path = "../../src/gitlab_rb/env.rs"]
pub mod env;
