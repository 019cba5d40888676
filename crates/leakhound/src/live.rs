//! What the live commands (`capture`, `hunt`) share: progress bars, Ctrl-C, file names.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

/// The process group of the app `hunt` started (0: none), for the Ctrl-C handler.
static APP_GROUP: AtomicI32 = AtomicI32::new(0);

/// Ctrl-C (and SIGTERM, SIGHUP) make live commands stop waiting and clean up: close the
/// inspector they opened, remove a partial file; an app `hunt` started (see [`set_app_group`])
/// is sent SIGTERM at once. A second signal quits at once, killing that app.
pub fn install_interrupt_handler() {
    let handler = || {
        let group = APP_GROUP.load(Ordering::SeqCst);
        let again = leakhound_live::cdp::interrupted();
        if group > 0
            && let Some(pid) = rustix::process::Pid::from_raw(group)
        {
            let signal = if again {
                rustix::process::Signal::KILL
            } else {
                rustix::process::Signal::TERM
            };
            let _ = rustix::process::kill_process_group(pid, signal);
        }
        if again {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: cleaning up (press Ctrl-C again to quit at once)");
        leakhound_live::cdp::interrupt();
    };
    // Registration fails only if a handler is already installed, which is then this one.
    let _ = ctrlc::set_handler(handler);
}

/// Makes the handler stop the app in process group `group` (the app `hunt` started).
pub fn set_app_group(group: i32) {
    APP_GROUP.store(group, Ordering::SeqCst);
}

pub fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A progress bar on stderr when it is a terminal, hidden otherwise. With `time`, the bar counts
/// milliseconds up to it.
pub fn bar(label: &str, time: Option<Duration>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(time.map_or(0, |t| t.as_millis() as u64));
    let template = if time.is_some() {
        "{prefix} {wide_bar} {elapsed}/{duration}"
    } else {
        "{prefix}: {msg} {wide_bar} {pos}/{len}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
