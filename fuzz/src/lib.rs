//! The parsers under fuzzing, compiled from the main crate's own source files, with small
//! stand-ins for the crate modules they name (`error::Problem`, `secret::Secret`).
#![allow(dead_code, unused_imports)]

pub mod gitlab_rb;

#[path = "../../src/image_tag.rs"]
pub mod image_tag;

#[path = "../../src/net.rs"]
pub mod net;

#[path = "../../src/registry.rs"]
pub mod registry;

#[path = "../../src/secret.rs"]
pub mod secret;

// Declared at the top level: a `#[path]` inside an inline module resolves from a directory
// (src/engine/) that does not exist here. Re-exported under the crate's own module paths.
#[path = "../../src/engine/request.rs"]
pub mod engine_request;

#[path = "../../src/server/request.rs"]
pub mod server_request;

pub mod engine {
    pub use crate::engine_request as request;
}

pub mod server {
    pub use crate::server_request as request;
}

pub mod error {
    /// The main crate's `Problem`, without the renderer (which needs the terminal printer).
    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    pub struct Problem {
        pub message: String,
        pub hint: Option<String>,
    }

    impl Problem {
        pub fn user(message: impl Into<String>) -> Self {
            Problem {
                message: message.into(),
                hint: None,
            }
        }

        pub fn tool(message: impl Into<String>) -> Self {
            Self::user(message)
        }

        pub fn hint(mut self, hint: impl Into<String>) -> Self {
            self.hint = Some(hint.into());
            self
        }
    }
}
