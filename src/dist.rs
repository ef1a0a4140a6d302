//! Shell completions and man pages, generated from the clap definitions that parse the command
//! line, so they always list the flags the binary accepts. scripts/package.sh installs them in
//! a release bundle under `share/`.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::ExitCode;
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::Path;

/// The name completions are registered for: the executable users type.
const BIN: &str = "vidcls";

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut buf);
    buf
}

/// The man page `vidcls.1` (roff): synopsis, every subcommand, options of the top level.
pub fn man_page() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .context("cannot render the man page")?;
    Ok(buf)
}

/// Writes `vidcls.1` and `vidcls-SUBCOMMAND.1` (each subcommand's flags) into `dir`.
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))
}

/// `vidcls completions SHELL`. Generated in memory first: clap_complete panics on a failed
/// write, and a closed pipe (`| head`) must stay a quiet exit.
pub fn completions_cmd(args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(&completions(args.shell))?;
    out.flush()?;
    Ok(ExitCode::Success)
}

/// `vidcls man [--dir DIR]`.
pub fn man_cmd(args: ManArgs) -> Result<ExitCode> {
    match args.dir {
        Some(dir) => write_man_pages(&dir)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&man_page()?)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use clap::Parser;

    #[test]
    fn parses_completions_and_man() {
        for (name, shell) in [
            ("bash", Shell::Bash),
            ("zsh", Shell::Zsh),
            ("fish", Shell::Fish),
        ] {
            let c = Cli::try_parse_from(["vidcls", "completions", name]).unwrap();
            assert!(
                matches!(c.command, Command::Completions(CompletionsArgs { shell: s }) if s == shell)
            );
        }
        assert!(Cli::try_parse_from(["vidcls", "completions", "tcsh"]).is_err());
        assert!(Cli::try_parse_from(["vidcls", "completions"]).is_err());
        let c = Cli::try_parse_from(["vidcls", "man"]).unwrap();
        assert!(matches!(c.command, Command::Man(ManArgs { dir: None })));
        let c = Cli::try_parse_from(["vidcls", "man", "--dir", "out"]).unwrap();
        assert!(
            matches!(c.command, Command::Man(ManArgs { dir: Some(d) }) if d == Path::new("out"))
        );
    }

    #[test]
    fn completions_know_subcommands_and_predict_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completions(shell)).unwrap();
            for word in [
                "predict",
                "probe",
                "models",
                "completions",
                "top-k",
                "shard",
            ] {
                assert!(text.contains(word), "{shell} completions lack {word}");
            }
        }
    }

    #[test]
    fn man_pages_cover_every_subcommand() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "not roff: {}",
            &page[..40]
        );
        assert!(page.contains(".TH vidcls 1"), "no title line");
        let dir = std::env::temp_dir().join(format!("vidcls-man-{}", std::process::id()));
        write_man_pages(&dir).unwrap();
        for sub in Cli::command().get_subcommands() {
            let p = dir.join(format!("vidcls-{}.1", sub.get_name()));
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(
                text.contains(".SH OPTIONS") || text.contains(".SH NAME"),
                "{}",
                p.display()
            );
        }
        let predict = std::fs::read_to_string(dir.join("vidcls-predict.1")).unwrap();
        assert!(predict.contains("top\\-k"), "predict page lacks --top-k");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
