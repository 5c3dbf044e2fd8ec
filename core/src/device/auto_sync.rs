//! Automatic sync on a background thread: soon after an edit, at a steady interval, and at once
//! when the network comes back; backing off while the server cannot be reached.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Inner;
use crate::error::{Error, Result};

/// When automatic sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoSyncOptions {
    /// Sync this often while nothing else prompts it.
    pub every: Duration,
    /// Sync this long after an edit, so a burst of typing goes in one sync.
    pub after_edit: Duration,
    /// Each sync stops at this deadline and resumes at the next.
    pub deadline: Duration,
    /// The longest wait after failures (it doubles from `after_edit` up to this).
    pub max_backoff: Duration,
}

impl Default for AutoSyncOptions {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(300),
            after_edit: Duration::from_secs(5),
            deadline: Duration::from_secs(25),
            max_backoff: Duration::from_secs(600),
        }
    }
}

#[derive(Debug)]
struct Control {
    stop: bool,
    /// When the next sync is due.
    next: Instant,
}

#[derive(Debug)]
pub(super) struct AutoSync {
    control: Arc<(Mutex<Control>, Condvar)>,
    options: AutoSyncOptions,
    thread: Option<JoinHandle<()>>,
}

impl AutoSync {
    pub(super) fn start(device: Weak<Inner>, options: AutoSyncOptions) -> Result<Self> {
        if options.every.is_zero() || options.deadline.is_zero() {
            return Err(Error::invalid(
                "auto sync",
                "the interval and deadline must be more than zero",
            ));
        }
        let control = Arc::new((
            Mutex::new(Control {
                stop: false,
                next: Instant::now(),
            }),
            Condvar::new(),
        ));
        let shared = Arc::clone(&control);
        let thread = thread::Builder::new()
            .name("outpost-auto-sync".into())
            .spawn(move || run(&device, &shared, options))
            .map_err(|e| Error::Internal(format!("could not start automatic sync: {e}")))?;
        Ok(Self {
            control,
            options,
            thread: Some(thread),
        })
    }

    /// Something was written: sync soon, unless a sync is due sooner anyway.
    pub(super) fn edited(&self) {
        self.due_by(Instant::now() + self.options.after_edit);
    }

    pub(super) fn wake_now(&self) {
        self.due_by(Instant::now());
    }

    fn due_by(&self, at: Instant) {
        let (lock, wake) = &*self.control;
        if let Ok(mut control) = lock.lock() {
            control.next = control.next.min(at);
            wake.notify_all();
        }
    }
}

impl Drop for AutoSync {
    fn drop(&mut self) {
        let (lock, wake) = &*self.control;
        if let Ok(mut control) = lock.lock() {
            control.stop = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != thread::current().id()
        {
            // The thread finishes the sync it is in (bounded by its deadline), then sees `stop`.
            let _ = thread.join();
        }
    }
}

fn run(device: &Weak<Inner>, control: &(Mutex<Control>, Condvar), options: AutoSyncOptions) {
    let mut backoff = options.after_edit.max(Duration::from_secs(1));
    loop {
        if !wait_until_due(control) {
            return;
        }
        // Due again after the steady interval unless something (an edit, the network coming
        // back) asks for sooner while this round runs.
        match control.0.lock() {
            Ok(mut c) => c.next = Instant::now() + options.every,
            Err(_) => return,
        }
        let Some(device) = device.upgrade() else { return };
        let next = if !device.network_available.load(std::sync::atomic::Ordering::SeqCst) {
            // Waits for `set_network_available(true)`, which wakes this thread.
            options.every
        } else {
            match device.sync_now(options.deadline) {
                Ok(outcome) if outcome.complete => {
                    backoff = options.after_edit.max(Duration::from_secs(1));
                    options.every
                }
                // Stopped at the deadline with more to do: carry on soon.
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::info!(error = %e, retry_in = ?backoff, "automatic sync failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(options.max_backoff);
                    wait
                }
            }
        };
        drop(device);
        let (lock, _) = control;
        match lock.lock() {
            Ok(mut c) => c.next = c.next.min(Instant::now() + next),
            Err(_) => return,
        }
    }
}

/// Sleeps until the next sync is due; false when asked to stop.
fn wait_until_due(control: &(Mutex<Control>, Condvar)) -> bool {
    let (lock, wake) = control;
    let Ok(mut c) = lock.lock() else { return false };
    loop {
        if c.stop {
            return false;
        }
        let now = Instant::now();
        if c.next <= now {
            return true;
        }
        let wait = c.next - now;
        c = match wake.wait_timeout(c, wait) {
            Ok((c, _)) => c,
            Err(_) => return false,
        };
    }
}
