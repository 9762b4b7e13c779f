//! Detects packets that `WitanClient::receive` rejected with an `internal` error. `receive`
//! counts every refused packet as rejected and logs the reason at debug level
//! (`packet rejected`, field `reason`); an engine or MLS `Internal` error among them is a bug,
//! so this `tracing` layer records it for the target to fail on.

use std::cell::RefCell;
use std::fmt::Debug;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

thread_local! {
    static INTERNAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the layer as the global subscriber (once; later calls do nothing).
pub fn install() {
    let subscriber = tracing_subscriber::registry().with(InternalRejections);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The reason of an `internal` rejection seen since the last call, if any.
pub fn take_internal() -> Option<String> {
    INTERNAL.with(|c| c.borrow_mut().take())
}

struct InternalRejections;

#[derive(Default)]
struct Fields {
    message: String,
    reason: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "reason" => self.reason = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "reason" => self.reason = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for InternalRejections {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let internal = f.reason.starts_with("internal")
            || f.reason.contains("internal mls error")
            || f.reason.contains("internal:");
        if f.message.contains("rejected") {
            crate::debug(|| format!("{}: {}", f.message, f.reason));
        }
        if f.message.contains("rejected") && internal {
            INTERNAL.with(|c| *c.borrow_mut() = Some(f.reason));
        }
    }
}
