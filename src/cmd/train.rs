//! `vidcls train`: the flags become `TrainOptions`; the work is `crate::train`'s.

use crate::config;
use crate::exit::ExitCode;
use anyhow::Result;

pub fn run(args: &crate::cli::TrainArgs) -> Result<ExitCode> {
    let threads = args.threads.map_or_else(config::cores, |t| t as usize);
    tch::set_num_threads(threads as i32);
    let options = config::train_options(args)?;
    match crate::train::run(&options)? {
        crate::train::Ended::Complete => {
            if !args.quiet {
                eprintln!(
                    "vidcls: wrote {} (use it with: vidcls predict -m {} VIDEOS)",
                    options.out.display(),
                    options.out.display()
                );
            }
            Ok(ExitCode::Success)
        }
        crate::train::Ended::Interrupted(sig) => Ok(ExitCode::Signal(sig)),
    }
}
