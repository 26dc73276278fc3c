//! The language-server edge: Zeke as an LSP *client* of rust-analyzer, clangd, pyright, … — the
//! transport and typed requests ([`client`]), position encodings ([`position`]). It knows nothing
//! of Zeke's surfaces, policy or tools; `app::lsp` decides when a server may start and turns
//! answers into tool results.

pub mod client;
pub mod position;

pub use client::{Client, Launch, LspError};
pub use position::Encoding;
