//! Exit codes, mapped to numbers in one place.

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every input was handled (or the reader of our output went away).
    Success,
    /// Some inputs failed; each has an error record.
    SomeFailed,
    /// A usage error or a fatal one: bad flags, a model that won't load, an unwritable output.
    Fatal,
    /// Stopped by a signal after saving what was done (128 + the signal number).
    Signal(i32),
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::SomeFailed => 1,
            ExitCode::Fatal => 2,
            ExitCode::Signal(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }

    /// `SomeFailed` when `failed` is true.
    pub fn from_failures(failed: bool) -> ExitCode {
        if failed {
            ExitCode::SomeFailed
        } else {
            ExitCode::Success
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(c.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::from_failures(true).code(), 1);
        assert_eq!(ExitCode::from_failures(false), ExitCode::Success);
        assert_eq!(ExitCode::Fatal.code(), 2);
        assert_eq!(ExitCode::Signal(2).code(), 130);
        assert_eq!(ExitCode::Signal(15).code(), 143);
    }
}
