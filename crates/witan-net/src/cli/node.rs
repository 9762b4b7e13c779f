//! `witan-node`: the service node as a program. Prints one JSON line per thing it does
//! (`cli::lines`), the first ones being its listen addresses.
//!
//! ```text
//! witan-node [--listen ADDR]... [--db FILE] [--retention-secs N] [--max-messages N]
//!            [--cluster N] [--shards N] [--max-packet-bytes N] [--peer ADDR]...
//!            [--until-stdin-closes]
//! ```
//!
//! Defaults: listen on `/ip4/127.0.0.1/tcp/0` (loopback, a free port), archive in memory,
//! retention 14 days and 10 million messages, cluster 66 with 8 shards, packets up to
//! 150 KiB. `--until-stdin-closes` stops the node when its standard input reaches its end
//! (a supervising process that dies takes its node with it).

use std::io::Read;
use std::process::ExitCode;

use super::args::Args;
use super::lines;
use crate::limits::{DEFAULT_MAX_PACKET_BYTES, Limits};
use crate::node::{self, NodeConfig, NodeEvent, Retention};
use crate::waku::sharding::Sharding;

const VALUES: &[&str] = &[
    "listen",
    "db",
    "retention-secs",
    "max-messages",
    "cluster",
    "shards",
    "max-packet-bytes",
    "peer",
];
const SWITCHES: &[&str] = &["until-stdin-closes"];

/// The program; `args` without the program name.
pub fn main(args: Vec<String>) -> ExitCode {
    super::exit(run(args))
}

fn config(args: &Args) -> Result<NodeConfig, String> {
    let defaults = NodeConfig::default();
    let listen = match args.all("listen") {
        l if l.is_empty() => defaults.listen,
        l => l
            .iter()
            .map(|a| a.parse().map_err(|e| format!("--listen {a:?}: {e}")))
            .collect::<Result<_, _>>()?,
    };
    let peers = args
        .all("peer")
        .iter()
        .map(|a| a.parse().map_err(|e| format!("--peer {a:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let retention = Retention {
        max_age_ms: args
            .number("retention-secs", defaults.retention.max_age_ms / 1000)?
            .saturating_mul(1000),
        max_messages: args.number("max-messages", defaults.retention.max_messages)?,
    };
    let sharding = Sharding::new(
        args.number("cluster", defaults.sharding.cluster)?,
        args.number("shards", defaults.sharding.shards)?,
    )?;
    let limits = Limits::new(args.number("max-packet-bytes", DEFAULT_MAX_PACKET_BYTES)?)?;
    Ok(NodeConfig {
        listen,
        peers,
        archive_path: args.get("db").map(Into::into),
        retention,
        sharding,
        limits,
    })
}

fn run(args: Vec<String>) -> Result<(), String> {
    let args = Args::parse(args, VALUES, SWITCHES)?;
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    // Without the switch the sender stays here, unused, until the node ends.
    let mut closed_tx = Some(closed_tx);
    if args.has("until-stdin-closes") {
        let tx = closed_tx.take();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        });
    }
    runtime
        .block_on(node::run(
            config,
            |event| {
                // Empty answers are the members' routine catch-ups: no news.
                if !matches!(
                    event,
                    NodeEvent::Answered {
                        messages: 0,
                        status: 200,
                        ..
                    }
                ) {
                    lines::print(&lines::node(&event));
                }
            },
            async {
                let _ = closed_rx.await;
            },
        ))
        .map_err(|e| e.to_string())?;
    drop(closed_tx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_the_configuration() {
        let args = Args::parse(
            [
                "--retention-secs",
                "60",
                "--shards",
                "2",
                "--listen",
                "/ip4/127.0.0.1/tcp/7",
            ]
            .map(String::from),
            VALUES,
            SWITCHES,
        )
        .unwrap();
        let c = config(&args).unwrap();
        assert_eq!(c.retention.max_age_ms, 60_000);
        assert_eq!(c.sharding.shards, 2);
        assert_eq!(c.listen[0].to_string(), "/ip4/127.0.0.1/tcp/7");
        let bad = Args::parse(["--shards", "0"].map(String::from), VALUES, SWITCHES).unwrap();
        assert!(config(&bad).is_err());
    }
}
