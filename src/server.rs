//! The OpenAI-compatible HTTP API over the engine: /v1/models, /v1/chat/completions,
//! /v1/completions (with fill-in-the-middle), /health and /metrics.
