//! SIGINT / SIGTERM during a batch: let the record being written finish, then exit with
//! 128 + the signal number (130, 143). Every finished input was already flushed, so
//! `--resume` picks up exactly where the run stopped.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

static WRITING: Mutex<()> = Mutex::new(());
/// The signal received, for work that stops at its own pace (0: none).
static REQUESTED: AtomicI32 = AtomicI32::new(0);
static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Held while one input's records are written and flushed; the signal handler waits for it.
pub fn writing() -> MutexGuard<'static, ()> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file (or private folder) to remove if the run is interrupted
/// ([`crate::atomic`] registers each file it creates).
pub fn remove_on_interrupt(path: PathBuf) {
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).push(path);
}

/// A file registered by [`remove_on_interrupt`] that is now in place, or gone.
pub fn forget(path: &std::path::Path) {
    CLEANUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

/// Starts the handler thread. Call once, before work starts.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let _held = writing();
            for p in CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                };
            }
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            eprintln!("\nvidcls: interrupted by {name}; finished records are saved (use --resume to continue)");
            // _exit, not exit: libtorch's static destructors must not run under a forward pass
            // on another thread. Nothing is lost: every finished record is already flushed.
            signal_hook::low_level::exit(128 + sig);
        }
    })?;
    Ok(())
}

/// Starts a handler thread that only records the signal: the work polls [`requested`] and
/// stops at a point of its choosing (training finishes its step and saves a checkpoint).
pub fn install_polled() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                REQUESTED.store(sig, Ordering::SeqCst);
            }
        })?;
    Ok(())
}

/// The signal received since [`install_polled`], if any.
pub fn requested() -> Option<i32> {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
