use std::process::ExitCode;

fn main() -> ExitCode {
    vidcls::app::main()
}
