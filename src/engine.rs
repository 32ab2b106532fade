//! The embedded llama.cpp engine: one dedicated thread owns the model and its context,
//! runs continuous batching over parallel sequences, and reuses cached prompt prefixes.
