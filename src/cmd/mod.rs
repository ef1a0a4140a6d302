//! One room per command: each takes its parsed arguments and runs the stages.

pub mod models;
