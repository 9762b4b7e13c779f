//! The engine's own log lines in the trace: a `tracing` layer that keeps the events of the
//! current thread while a traced run is going on, which the world drains after every call
//! and prints under the member that made it (member ids shortened to `m3`).

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?} ");
        } else {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if !ON.with(Cell::get) {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let line = format!("{} {}", event.metadata().level(), fields.0.trim_end());
        LINES.with(|l| l.borrow_mut().push(line));
    }
}

/// Starts keeping the engine's log lines on this thread.
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ =
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture));
    });
    ON.with(|o| o.set(true));
}

/// The lines kept since the last call.
pub fn drain() -> Vec<String> {
    if !ON.with(Cell::get) {
        return Vec::new();
    }
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}
