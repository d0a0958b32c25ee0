//! Integration tests, compiled into one binary. One module per area.

mod support;

mod bm25;
mod embed;
mod eval;
mod mine;
