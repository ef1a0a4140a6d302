//! The `vidcls` command: parses flags, dispatches to the subcommand's room in `src/cmd/`, maps
//! the outcome to an exit code (0 all inputs done, 1 some inputs failed, 2 usage or fatal error).

use crate::cli::{Cli, Command};
use crate::cmd;
use crate::config;
use crate::exit::ExitCode;
use anyhow::Result;
use clap::Parser;

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::Success,
        Err(err) => {
            eprintln!("vidcls: {}", cmd::error_text(&err));
            ExitCode::Fatal
        }
    };
    code.into()
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(|e| e.kind()) == pipe
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                == pipe
    })
}

/// Maps the command's flags to its plan (`config`) and runs its room (`cmd`).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Predict(args) => cmd::predict::run(config::predict(*args)?),
        Command::Train(args) => cmd::train::run(config::train(&args)?),
        Command::Embed(args) => cmd::embed::run(config::embed(*args)?),
        Command::Annotate(args) => cmd::annotate::run(config::annotate(*args)?),
        Command::Watch(args) => cmd::watch::run(config::watch(*args)?),
        Command::Probe(args) => cmd::probe::run(config::probe(args)?),
        Command::Models(args) => cmd::models::run(config::models(args)?),
        Command::Report(args) => cmd::report::run(config::report(args)?),
        Command::Version => {
            println!("{}", crate::version::collect());
            Ok(ExitCode::Success)
        }
        Command::Completions(args) => crate::dist::completions_cmd(args),
        Command::Man(args) => crate::dist::man_cmd(args),
    }
}
