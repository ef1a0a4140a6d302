//! `vidcls train`: its plan is `TrainOptions`; the work is `crate::train`'s.

use crate::exit::ExitCode;
use crate::train::TrainOptions;
use anyhow::Result;

pub fn run(options: TrainOptions) -> Result<ExitCode> {
    tch::set_num_threads(options.threads as i32);
    match crate::train::run(&options)? {
        crate::train::Ended::Complete => {
            if !options.quiet {
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
