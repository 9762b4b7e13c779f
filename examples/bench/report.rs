//! The results: the markdown table (measured figures beside the reference de-mls 4.1.0 and
//! the targets), the JSON of `bench-format.md`, and workload (f), the cdylib size.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::floor::Floor;
use super::wakeup::Wakeup;
use super::workloads::{Chat, Formation, Removal};
use super::world::BenchResult;

/// The reference de-mls 4.1.0, in memory, on this machine: (n, formation CPU s,
/// µs per receive, removal CPU ms, RSS MiB).
const REFERENCE: [(usize, f64, f64, f64, f64); 3] = [
    (16, 0.041, 59.0, 77.0, 7.1),
    (64, 0.569, 100.0, 1_406.0, 23.2),
    (128, 2.837, 168.0, 7_320.0, 69.1),
];

fn reference(n: usize) -> Option<(f64, f64, f64, f64)> {
    REFERENCE
        .iter()
        .find(|r| r.0 == n)
        .map(|r| (r.1, r.2, r.3, r.4))
}

const WAKEUP_MS: f64 = 100.0;
const WAKEUP_RSS_MIB: f64 = 16.0;
/// (d′) targets: the iOS notification extension's memory limit.
const WAKEUP_LARGE_MS: f64 = 300.0;
const WAKEUP_LARGE_RSS_MIB: f64 = 24.0;
const FLOOR_RATIO: f64 = 2.0;
const CDYLIB_MIB: f64 = 8.0;
const RECEIVE_US_AT_128: f64 = 80.0;

#[derive(Debug, Clone)]
pub struct Size {
    pub path: PathBuf,
    pub bytes: u64,
    pub unstripped_bytes: u64,
    pub stripped: bool,
    /// The library is older than one of its sources (`cargo run --example` does not rebuild
    /// it; run `cargo build --release` first).
    pub stale: bool,
}

#[derive(Debug, Default)]
pub struct Results {
    pub machine: String,
    pub loadavg_after: String,
    pub formation: Vec<Formation>,
    pub chat: Vec<Chat>,
    pub removal: Vec<Removal>,
    /// (c′): the removal with one packet per `receive` call.
    pub live_removal: Vec<Removal>,
    /// (b″): live chat again after the removal (one past epoch kept).
    pub live_after_removal: Vec<Chat>,
    pub wakeup: Vec<Wakeup>,
    /// (d′): the extension-role wake-up of a 1,000-member group.
    pub wakeup_large: Option<Wakeup>,
    pub floor: Vec<Floor>,
    pub size: Option<Size>,
    /// The reference figures (b′) is held to.
    pub live_reference: super::scale_report::LiveReference,
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

/// "≤ x (✅)" for targets that apply at this size, "—" otherwise.
fn half_target(n: usize, measured: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if n >= 64 => format!("≤ {} {}", fmt3(r / 2.0), verdict(measured <= r / 2.0)),
        _ => "—".into(),
    }
}

fn fmt3(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("—".into(), fmt3)
}

impl Results {
    fn witan_receive_us(&self, n: usize) -> Option<f64> {
        self.chat
            .iter()
            .find(|c| c.n == n && !c.live)
            .map(|c| c.us_per_receive)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Machine: {} (before); {} (after). Heap allocator: {} ({}); a thread per member: {} ({}).\n",
            self.machine,
            self.loadavg_after,
            super::alloc::name(),
            super::alloc::VARIABLE.to_string_lossy(),
            if super::threads::on() { "yes" } else { "no" },
            super::threads::VARIABLE,
        );
        self.formation_table(&mut s);
        self.chat_table(&mut s);
        super::scale_report::live(&mut s, &self.chat, &self.live_reference);
        super::scale_report::live_after_removal(&mut s, &self.chat, &self.live_after_removal);
        self.removal_table(&mut s);
        super::scale_report::per_commit(&mut s, &self.formation, &self.removal);
        super::alone::report(&mut s, &self.removal);
        super::scale_report::live_removal(&mut s, &self.live_removal);
        self.wakeup_table(&mut s);
        self.wakeup_large_table(&mut s);
        self.floor_table(&mut s);
        self.size_table(&mut s);
        s
    }

    /// Writes (a): the formation table.
    fn formation_table(&self, s: &mut String) {
        if !self.formation.is_empty() {
            let _ = writeln!(
                s,
                "### (a) formation (median CPU of 3 runs, each in fresh databases)\n"
            );
            let _ = writeln!(
                s,
                "| n | wall s | CPU s | reference CPU s | target CPU s | commits | packets | bytes | process peak RSS MiB | reference RSS MiB |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
            for f in &self.formation {
                let r = reference(f.n);
                let cpu = f.cpu.as_secs_f64();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    f.n,
                    fmt3(f.wall.as_secs_f64()),
                    fmt3(cpu),
                    opt(r.map(|r| r.0)),
                    half_target(f.n, cpu, r.map(|r| r.0)),
                    f.commits,
                    f.packets,
                    f.bytes,
                    fmt3(f.peak_rss_mib),
                    opt(r.map(|r| r.3)),
                );
            }
            s.push('\n');
        }
    }
    /// Writes (b): the batched chat table and its growth.
    fn chat_table(&self, s: &mut String) {
        let batched: Vec<&Chat> = self.chat.iter().filter(|c| !c.live).collect();
        if let Some(first) = batched.first() {
            let _ = writeln!(
                s,
                "### (b) chat ({} rounds, 64-byte messages)\n",
                first.rounds
            );
            let _ = writeln!(
                s,
                "| n | receives | receives/s | µs/receive | reference µs/receive | target | µs/send | wire bytes/message | chat CPU s |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
            let smallest = batched.iter().filter(|c| c.n >= 4).min_by_key(|c| c.n);
            for c in &batched {
                let r = reference(c.n);
                let target = if c.n == 128 {
                    format!(
                        "≤ {RECEIVE_US_AT_128} {}",
                        verdict(c.us_per_receive <= RECEIVE_US_AT_128)
                    )
                } else {
                    "—".into()
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {} | {} | {} | {} | {:.0} | {} |",
                    c.n,
                    c.receives,
                    c.receives_per_s,
                    fmt3(c.us_per_receive),
                    opt(r.map(|r| r.1)),
                    target,
                    fmt3(c.us_per_send),
                    c.bytes_per_message,
                    fmt3(c.cpu.as_secs_f64()),
                );
            }
            if let (Some(lo), Some(hi)) = (smallest, batched.iter().max_by_key(|c| c.n))
                && hi.n > lo.n
            {
                let growth = hi.us_per_receive / lo.us_per_receive;
                let log_growth = (hi.n as f64).log2() / (lo.n as f64).log2();
                let _ = writeln!(
                    s,
                    "\nGrowth of µs/receive from n={} to n={}: ×{:.2} (log N grows ×{:.2}) {}",
                    lo.n,
                    hi.n,
                    growth,
                    log_growth,
                    verdict(growth <= log_growth)
                );
            }
            s.push('\n');
        }
    }
    /// Writes (c): the removal table.
    fn removal_table(&self, s: &mut String) {
        if !self.removal.is_empty() {
            let _ = writeln!(
                s,
                "### (c) removal (median CPU of the runs, each in a world of its own)\n"
            );
            let _ = writeln!(
                s,
                "| n | runs | wall ms | CPU ms | reference CPU ms | target CPU ms | packets | bytes |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
            for r in &self.removal {
                let reference_ms = reference(r.n).map(|x| x.2);
                let cpu = r.cpu.as_secs_f64() * 1e3;
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.n,
                    r.runs,
                    fmt3(r.wall.as_secs_f64() * 1e3),
                    fmt3(cpu),
                    opt(reference_ms),
                    half_target(r.n, cpu, reference_ms),
                    r.packets,
                    r.bytes,
                );
            }
            s.push('\n');
        }
    }
    /// Writes (d): the push wake-up table.
    fn wakeup_table(&self, s: &mut String) {
        if !self.wakeup.is_empty() {
            let _ = writeln!(s, "### (d) push wake-up (fresh process, median of 3)\n");
            let _ = writeln!(
                s,
                "| mode | members | stored conversations | stored messages | backlog | wall ms | target | peak RSS MiB | target |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
            for d in &self.wakeup {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | < {WAKEUP_MS} {} | {} | < {WAKEUP_RSS_MIB} {} |",
                    d.mode,
                    d.members,
                    d.stored_conversations,
                    d.stored_messages,
                    d.backlog,
                    fmt3(d.wall_ms),
                    verdict(d.wall_ms < WAKEUP_MS),
                    fmt3(d.peak_rss_mib),
                    verdict(d.peak_rss_mib < WAKEUP_RSS_MIB),
                );
            }
            s.push('\n');
        }
    }
    /// Writes (d′): the wake-up of a large group.
    fn wakeup_large_table(&self, s: &mut String) {
        if let Some(d) = &self.wakeup_large {
            let _ = writeln!(
                s,
                "### (d′) push wake-up of a {}-member group (fresh process, median of 3)\n",
                d.members
            );
            let _ = writeln!(
                s,
                "| mode | members | backlog | notifications | published | wall ms | CPU ms | target | peak RSS MiB | target |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | < {WAKEUP_LARGE_MS} {} | {} | < {WAKEUP_LARGE_RSS_MIB} {} |\n",
                d.mode,
                d.members,
                d.backlog,
                d.notifications,
                d.published,
                fmt3(d.wall_ms),
                fmt3(d.cpu_ms),
                verdict(d.wall_ms < WAKEUP_LARGE_MS),
                fmt3(d.peak_rss_mib),
                verdict(d.peak_rss_mib < WAKEUP_LARGE_RSS_MIB),
            );
        }
    }
    /// Writes (e): plain OpenMLS beside witan on the same batched receives.
    fn floor_table(&self, s: &mut String) {
        if !self.floor.is_empty() {
            let _ = writeln!(
                s,
                "### (e) floor: plain OpenMLS, in memory, on the same batched receives\n"
            );
            let _ = writeln!(
                s,
                "Both sides receive a chat round as one batch of n-1 messages per member: \
                 OpenMLS `process_message` on each, witan one `receive` call for all of them.\n"
            );
            let _ = writeln!(
                s,
                "| n | OpenMLS µs/decrypt (batched) | witan µs/receive (batched) | ratio | target |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|");
            for f in &self.floor {
                let witan = self.witan_receive_us(f.n);
                let ratio = witan.map(|w| w / f.us_per_decrypt);
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    f.n,
                    fmt3(f.us_per_decrypt),
                    opt(witan),
                    ratio.map_or("—".into(), |r| format!("{r:.2}")),
                    ratio.map_or("≤ 2".into(), |r| format!(
                        "≤ {FLOOR_RATIO} {}",
                        verdict(r <= FLOOR_RATIO)
                    )),
                );
            }
            s.push('\n');
        }
    }
    /// Writes (f): the release library's size.
    fn size_table(&self, s: &mut String) {
        if let Some(size) = &self.size {
            let mib = size.bytes as f64 / (1024.0 * 1024.0);
            let _ = writeln!(s, "### (f) release cdylib\n");
            let _ = writeln!(s, "| file | bytes | MiB | target |");
            let _ = writeln!(s, "|---|---|---|---|");
            let _ = writeln!(
                s,
                "| {} ({}) | {} | {:.2} | ≤ {CDYLIB_MIB} MiB {} |",
                size.path
                    .file_name()
                    .map_or("?".into(), |f| f.to_string_lossy()),
                if size.stripped {
                    format!("stripped copy; {} bytes unstripped", size.unstripped_bytes)
                } else {
                    "UNSTRIPPED: `strip` not available".into()
                },
                size.bytes,
                mib,
                verdict(mib <= CDYLIB_MIB),
            );
        }
    }

    pub fn json(&self) -> Value {
        let mut runs = Vec::new();
        for f in &self.formation {
            runs.push(json!({
                "workload": "formation", "n": f.n, "wall_s": f.wall.as_secs_f64(),
                "cpu_s": f.cpu.as_secs_f64(), "cpu_s_schedstat": f.cpu_precise.as_secs_f64(),
                "commits": f.commits, "packets": f.packets, "bytes": f.bytes,
                "receive_calls": f.receive_calls, "packets_received": f.packets_received,
                "process_peak_rss_mib": f.peak_rss_mib,
                "reference_cpu_s": reference(f.n).map(|r| r.0),
                "per_commit": super::scale_report::per_commit_json(&f.per_commit),
            }));
        }
        for c in &self.chat {
            runs.push(self.chat_json(c));
        }
        for c in &self.live_after_removal {
            runs.push(json!({
                "workload": "live_chat_after_removal", "n": c.n, "rounds": c.rounds,
                "us_per_receive": c.us_per_receive, "receives": c.receives,
                "cpu_us_per_receive": super::scale_report::cpu_us_per_receive(c),
            }));
        }
        for r in self.removal.iter().chain(&self.live_removal) {
            runs.push(json!({
                "workload": if r.live { "live_removal" } else { "removal" }, "n": r.n,
                "runs": r.runs,
                "wall_ms": r.wall.as_secs_f64() * 1e3,
                "cpu_ms": r.cpu.as_secs_f64() * 1e3,
                "cpu_ms_schedstat": r.cpu_precise.as_secs_f64() * 1e3,
                "packets": r.packets, "bytes": r.bytes, "packets_received": r.packets_received,
                "reference_cpu_ms": reference(r.n).map(|x| x.2),
                "per_commit": super::scale_report::per_commit_json(&r.per_commit),
                "alone": r.alone.as_ref().map(super::alone::Alone::json),
            }));
        }
        for d in &self.wakeup {
            runs.push(json!({
                "workload": "wakeup", "mode": d.mode, "members": d.members,
                "stored_conversations": d.stored_conversations,
                "stored_messages": d.stored_messages, "backlog": d.backlog,
                "wall_ms": d.wall_ms, "cpu_ms": d.cpu_ms, "peak_rss_mib": d.peak_rss_mib,
                "notifications": d.notifications, "published": d.published,
                "build_s": d.build_s,
            }));
        }
        if let Some(d) = &self.wakeup_large {
            runs.push(json!({
                "workload": "wakeup_large", "mode": d.mode, "members": d.members,
                "backlog": d.backlog, "wall_ms": d.wall_ms, "cpu_ms": d.cpu_ms,
                "peak_rss_mib": d.peak_rss_mib,
                "notifications": d.notifications, "published": d.published,
                "build_s": d.build_s,
            }));
        }
        for f in &self.floor {
            let witan = self.witan_receive_us(f.n);
            runs.push(json!({
                "workload": "floor", "n": f.n, "us_per_decrypt_openmls": f.us_per_decrypt,
                "us_per_receive_witan": witan,
                "ratio": witan.map(|w| w / f.us_per_decrypt),
                "decrypts": f.decrypts,
            }));
        }
        if let Some(size) = &self.size {
            runs.push(json!({
                "workload": "size", "cdylib_bytes": size.bytes, "stripped": size.stripped,
                "unstripped_bytes": size.unstripped_bytes, "stale": size.stale,
            }));
        }
        json!({
            "machine": self.machine, "machine_after": self.loadavg_after, "runs": runs,
            "allocator": super::alloc::name(), "member_threads": super::threads::on(),
            "live_reference_pairs": self.live_reference.pairs_json(),
        })
    }

    /// One chat workload, batched (b) or live (b′), as a JSON run.
    fn chat_json(&self, c: &Chat) -> Value {
        json!({
            "workload": if c.live { "live_chat" } else { "chat" }, "n": c.n, "rounds": c.rounds,
            "receives_per_s": c.receives_per_s, "us_per_receive": c.us_per_receive,
            "us_per_send": c.us_per_send, "bytes_per_message": c.bytes_per_message,
            "receives": c.receives, "cpu_s": c.cpu.as_secs_f64(),
            "signatures_per_receive": c.signatures_per_receive,
            "cpu_us_per_receive": super::scale_report::cpu_us_per_receive(c),
            "receive_cpu_us_per_receive": c.receive_cpu_us,
            "reference_us_per_receive": reference(c.n).map(|r| r.1),
            "reference_live_us_per_message": if c.live { self.live_reference.at(c.n) } else { None },
            "reference_live_cpu_us_per_message": if c.live { self.live_reference.cpu_at(c.n) } else { None },
            "reference_live_source": if c.live { Some(self.live_reference.source.as_str()) } else { None },
        })
    }
}

/// (f) The release cdylib next to this binary (`target/release/libwitan.so`), stripped in a
/// temporary copy when `strip` is available.
pub fn cdylib_size() -> BenchResult<Size> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("cannot locate the target directory")?;
    let path = release.join("libwitan.so");
    let meta = std::fs::metadata(&path).map_err(|e| {
        format!(
            "{}: {e} (run `cargo build --release` first)",
            path.display()
        )
    })?;
    let unstripped_bytes = meta.len();
    // Stale: a source of the library changed after it was built.
    let stale = match (meta.modified(), newest_source()) {
        (Ok(lib), Some(source)) => lib < source,
        _ => false,
    };
    let copy = std::env::temp_dir().join(format!("witan-bench-{}.so", std::process::id()));
    std::fs::copy(&path, &copy)?;
    let stripped = std::process::Command::new("strip")
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if stripped {
        std::fs::metadata(&copy)?.len()
    } else {
        unstripped_bytes
    };
    std::fs::remove_file(&copy)?;
    Ok(Size {
        path,
        bytes,
        unstripped_bytes,
        stripped,
        stale,
    })
}

/// The modification time of the newest source of the library (`Cargo.toml`, `build.rs` and
/// everything under `src/`).
fn newest_source() -> Option<std::time::SystemTime> {
    fn walk(dir: &std::path::Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                *newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = None;
    walk(&root.join("src"), &mut newest);
    for file in ["Cargo.toml", "build.rs"] {
        if let Ok(t) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = Some(newest.map_or(t, |n: std::time::SystemTime| n.max(t)));
        }
    }
    newest
}
