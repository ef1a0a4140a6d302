//! vidcls: label what happens in videos with 3D-CNN action-recognition models.
//!
//! Three stages: [`decode`] (FFmpeg: video -> clips of RGB frames), [`model`] (libtorch:
//! clips -> scores) and [`report`] (typed results -> text, JSON, JSON Lines, CSV), joined by
//! [`pipeline`]; [`app`] is the command line on top.

pub mod app;
pub mod atomic;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod decode;
pub mod dist;
pub mod exit;
pub mod hub;
pub mod inputs;
pub mod interrupt;
pub mod model;
pub mod overlay;
pub mod picture;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod train;
pub mod version;
