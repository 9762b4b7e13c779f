//! Logging: the library logs through `tracing`; this module routes those events to the
//! platform and to an optional host `Logger`.
//!
//! - On Apple targets events also go to the unified log (os_log) through `tracing-oslog`,
//!   subsystem `dev.witan`.
//! - On every platform a host may install a [`Logger`] callback (Android apps forward it to
//!   logcat with `android.util.Log`, iOS apps to their own logging).
//! - The level is a process-wide setting that can change at run time ([`set_log_level`]).
//!
//! What is logged: protocol steps, state changes, errors, with member ids shortened to 8 hex
//! characters. Never message bodies, key material, secrets or full member ids — the callers
//! in this crate only pass such values through `MemberId::short`, and a test scans the logs of
//! a whole scenario for leaks.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Receives the library's log lines (implemented by the host app).
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);
static HOST: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);
static INSTALL: Once = Once::new();

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        Level::TRACE => LogLevel::Trace,
    }
}

fn enabled(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("witan")
        && level_of(meta.level()) as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Formats an event's fields into one line.
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

impl Line {
    fn push(&mut self, field: &Field, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(field.name());
            self.0.push('=');
            self.0.push_str(value);
        }
    }
}

/// Hands events to the host's logger.
struct HostLayer;

impl<S: Subscriber> Layer<S> for HostLayer {
    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        enabled(meta)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let logger = match HOST.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let Some(logger) = logger else { return };
        let mut line = Line(String::new());
        event.record(&mut line);
        let meta = event.metadata();
        let level = level_of(meta.level());
        let target = meta.target().to_string();
        // A host logger that throws must not break the step that logged: drop the line.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            logger.log(level, target, line.0)
        }));
    }
}

fn install() {
    INSTALL.call_once(|| {
        let registry = tracing_subscriber::registry().with(HostLayer);
        #[cfg(target_vendor = "apple")]
        let registry = registry.with(
            tracing_oslog::OsLogger::new("dev.witan", "default")
                .with_filter(tracing_subscriber::filter::filter_fn(|m| enabled(m))),
        );
        // Another global subscriber (the host's own Rust code) wins; ours then stays quiet.
        let _ = tracing::subscriber::set_global_default(registry);
    });
}

/// Installs (or with `None` removes) the host's logger and sets the level.
#[uniffi::export]
pub fn set_logger(logger: Option<Arc<dyn Logger>>, level: LogLevel) {
    match HOST.write() {
        Ok(mut guard) => *guard = logger,
        Err(poisoned) => *poisoned.into_inner() = logger,
    }
    set_log_level(level);
}

/// Changes the level at run time.
#[uniffi::export]
pub fn set_log_level(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    install();
    tracing::callsite::rebuild_interest_cache();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Capture(Mutex<Vec<(LogLevel, String)>>);
    impl Logger for Capture {
        fn log(&self, level: LogLevel, _target: String, message: String) {
            if let Ok(mut v) = self.0.lock() {
                v.push((level, message));
            }
        }
    }

    struct Throwing;
    impl Logger for Throwing {
        fn log(&self, _level: LogLevel, _target: String, _message: String) {
            panic!("host logger failed");
        }
    }

    #[test]
    fn host_logger_receives_lines_at_or_above_the_level() {
        host_logger_lines_and_levels();
        a_throwing_host_logger_does_not_break_the_caller();
    }

    fn a_throwing_host_logger_does_not_break_the_caller() {
        set_logger(Some(Arc::new(Throwing)), LogLevel::Trace);
        tracing::info!("this line is dropped");
        set_logger(None, LogLevel::Info);
    }

    fn host_logger_lines_and_levels() {
        let capture = Arc::new(Capture(Mutex::new(Vec::new())));
        set_logger(Some(capture.clone()), LogLevel::Info);
        tracing::info!(member = "abcd1234", "state changed");
        tracing::debug!("too detailed");
        set_log_level(LogLevel::Debug);
        tracing::debug!("now visible");
        set_logger(None, LogLevel::Info);
        tracing::error!("after removal");
        let lines = capture.0.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == LogLevel::Info && m == "state changed member=abcd1234")
        );
        assert!(!lines.iter().any(|(_, m)| m == "too detailed"));
        assert!(lines.iter().any(|(_, m)| m == "now visible"));
        assert!(!lines.iter().any(|(_, m)| m == "after removal"));
    }
}
