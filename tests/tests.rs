//! Integration tests, compiled into one binary. One module per area.

mod support;

mod bm25;
mod dense;
mod embed;
mod eval;
mod faults;
mod hybrid;
mod mine;
mod mine_audit;
mod promises;
mod rerank;
mod same_bytes;
mod shards;
