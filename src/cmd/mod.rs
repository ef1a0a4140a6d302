//! One room per command: each maps its flags to stage values and runs the stages.

pub mod annotate;
pub mod batch;
pub mod embed;
pub mod models;
pub mod predict;
pub mod probe;
pub mod report;
pub mod train;
pub mod watch;

/// `{err:#}` for stderr: each message of the chain escaped for a terminal (names in it cannot
/// start lines or send escape sequences), except that libtorch's reports keep their line breaks.
pub fn error_text(err: &anyhow::Error) -> String {
    let shown = |c: &(dyn std::error::Error + 'static)| {
        let text = c.to_string();
        if c.is::<tch::TchError>() {
            crate::report::escape::terminal_lines(&text)
        } else {
            crate::report::escape::terminal(&text).into_owned()
        }
    };
    err.chain().map(shown).collect::<Vec<_>>().join(": ")
}
