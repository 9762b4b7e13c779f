//! Logs never carry message bodies, key material or full member ids: a whole scenario runs at
//! trace level with a capturing host logger, and every captured line is scanned.

mod support;

use std::sync::{Arc, Mutex};

use support::{Net, fast_settings};
use witan::logging::{LogLevel, Logger, set_logger};

struct Capture(Mutex<Vec<String>>);

impl Logger for Capture {
    fn log(&self, _level: LogLevel, target: String, message: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{target}: {message}"));
        }
    }
}

#[test]
fn a_scenario_logs_no_bodies_keys_or_full_member_ids() {
    let capture = Arc::new(Capture(Mutex::new(Vec::new())));
    set_logger(Some(capture.clone()), LogLevel::Trace);

    let mut net = Net::form(5, fast_settings());
    net.run_for(20_000);
    let body = "SECRET-BODY-7f3a";
    for i in 0..5 {
        net.send(i, body.as_bytes());
    }
    net.deliver();
    let target = net.nodes[4].id();
    net.act(0, |c, ctx| c.propose_removal(ctx, target).map(|(_, o)| o))
        .unwrap();
    net.run_for(20_000);
    set_logger(None, LogLevel::Info);

    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("commit applied")),
        "the scenario was logged"
    );
    assert!(lines.iter().any(|l| l.contains("state changed")));
    let hex_body = hex::encode(body.as_bytes());
    for line in &lines {
        assert!(
            !line.contains(body) && !line.contains(&hex_body),
            "body leaked: {line}"
        );
        for node in &net.nodes {
            let secret = hex::encode(node.identity.secret());
            assert!(!line.contains(&secret), "identity secret leaked: {line}");
            assert!(
                !line.contains(&node.id().to_hex()),
                "full member id leaked: {line}"
            );
            assert!(
                !line.contains(&format!("{:?}", node.identity.secret())),
                "secret bytes leaked: {line}"
            );
        }
    }
}
