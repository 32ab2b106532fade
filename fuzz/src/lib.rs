//! The parsers under fuzzing, compiled from the main crate's own source files, with small
//! stand-ins for the crate modules they name (`error::Problem`, `secret::Secret`).
#![allow(dead_code, unused_imports)]

pub mod gitlab_rb;

#[path = "../../src/image_tag.rs"]
pub mod image_tag;

#[path = "../../src/secret.rs"]
pub mod secret;

pub mod engine {
    #[path = "../../../src/engine/request.rs"]
    pub mod request;
}

pub mod server {
    #[path = "../../../src/server/request.rs"]
    pub mod request;
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
