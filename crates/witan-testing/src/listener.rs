//! Event listeners for members: one that keeps every event until the harness reads it, and
//! one that ignores them (a fixture that never looks).

use std::sync::Mutex;

use witan::client::{EventListener, WitanEvent};

/// Keeps every event its member heard, in order.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<WitanEvent>>);

impl Recorder {
    /// The events heard so far (kept).
    pub fn events(&self) -> Vec<WitanEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The events heard since the last call (removed).
    pub fn take(&self) -> Vec<WitanEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl EventListener for Recorder {
    fn on_event(&self, event: WitanEvent) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

/// Hears nothing.
#[derive(Default)]
pub struct Ignore;

impl EventListener for Ignore {
    fn on_event(&self, _event: WitanEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(n: u8) -> WitanEvent {
        WitanEvent::Warning {
            conversation_id: None,
            message: n.to_string(),
        }
    }

    #[test]
    fn a_recorder_keeps_events_in_order_until_taken() {
        let r = Recorder::default();
        r.on_event(warning(1));
        r.on_event(warning(2));
        assert_eq!(r.events(), vec![warning(1), warning(2)]);
        assert_eq!(r.take(), vec![warning(1), warning(2)]);
        assert!(r.events().is_empty());
        r.on_event(warning(3));
        assert_eq!(r.take(), vec![warning(3)]);
    }
}
