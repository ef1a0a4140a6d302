//! vidcls's integration tests: one binary (every extra test binary links libtorch again).

mod support;

mod annotate;
mod bench;
mod cli;
mod decode;
mod docs;
mod embed;
mod files;
mod golden;
mod html;
mod live;
mod memory;
mod models;
mod motion;
mod output;
mod package;
mod pretrained;
mod reliability;
mod report_cmd;
mod slurm;
mod sources;
mod train;
