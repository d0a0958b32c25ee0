//! Integration tests, compiled into one binary. One module per area.

mod support;

mod embed;
mod eval;
