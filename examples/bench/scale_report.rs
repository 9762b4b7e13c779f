//! The tables of the scale workloads (issue #20): what one commit costs each member in (a)
//! and (c) at every size, the certificate's share of it, and the live chat (b′) beside the
//! batched one (b) and the reference.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::workloads::{Chat, Formation, PerCommit, Removal, median_second_max};

/// Bytes in a mebibyte.
const MIB: f64 = 1024.0 * 1024.0;

/// The reference de-mls 4.1.0 in memory, one message per call, as issue #20 gives it (n, µs
/// per message): measured on the machine the issue was filed from, not re-run here.
const ISSUE_REFERENCE_LIVE: [(usize, f64); 3] = [(16, 65.0), (64, 144.0), (128, 239.0)];

/// The reference's µs per message for (b′), one message per call, in memory: measured on this
/// machine by `scripts/bench-reference.sh` and handed over with `--reference PATH`, or else the
/// issue's figures (another machine, so a verdict against them compares two machines).
#[derive(Debug, Clone)]
pub struct LiveReference {
    pub source: String,
    pub us: Vec<(usize, f64)>,
    /// The reference's CPU µs per message (its process clock around its receive calls),
    /// where measured.
    pub cpu: Vec<(usize, f64)>,
    /// Measured in alternation with witan's live chat (`--run-reference`): per n, witan's and
    /// the reference's µs per receive of each pair, in the order run.
    pub pairs: Vec<(usize, Vec<(f64, f64)>)>,
}

impl Default for LiveReference {
    fn default() -> Self {
        LiveReference {
            source: "de-mls 4.1.0 as issue #20 gives it (another machine)".into(),
            us: ISSUE_REFERENCE_LIVE.to_vec(),
            cpu: Vec::new(),
            pairs: Vec::new(),
        }
    }
}

impl LiveReference {
    /// Reads the JSON object `scripts/bench-reference.sh --json PATH` writes.
    pub fn read(path: &std::path::Path) -> Result<LiveReference, String> {
        Self::read_as(
            path,
            &format!("measured on this machine ({})", path.display()),
        )
    }

    /// [`LiveReference::read`], saying `how` the figures were taken.
    pub fn read_as(path: &std::path::Path, how: &str) -> Result<LiveReference, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let label = v["reference"].as_str().unwrap_or("the reference");
        let Some(per_n) = v["live_us_per_receive"].as_object() else {
            return Err(format!("{}: no live_us_per_receive object", path.display()));
        };
        let us = per_n_figures(path, per_n)?;
        let cpu = match v["cpu_us_per_receive"].as_object() {
            Some(per_n) => per_n_figures(path, per_n)?,
            None => Vec::new(),
        };
        Ok(LiveReference {
            source: format!("{label}, {how}"),
            us,
            cpu,
            pairs: Vec::new(),
        })
    }

    /// The figures of `--run-reference`, filled in per n as the pairs are run.
    pub fn alternated(pairs: usize) -> LiveReference {
        LiveReference {
            source: format!(
                "de-mls 4.1.0, measured on this machine in this run: {pairs} runs alternated \
                 with witan's live chat on each n, medians of both"
            ),
            us: Vec::new(),
            cpu: Vec::new(),
            pairs: Vec::new(),
        }
    }

    /// Records one n's pairs (witan µs, reference µs) and the reference's medians (of the
    /// pairs, and of its CPU figures `cpu`).
    pub fn add_pairs(&mut self, n: usize, pairs: Vec<(f64, f64)>, cpu: Vec<f64>) {
        let (median, _, _) = median_second_max(pairs.iter().map(|p| p.1).collect());
        self.us.push((n, median));
        self.pairs.push((n, pairs));
        if !cpu.is_empty() {
            let (median, _, _) = median_second_max(cpu);
            self.cpu.push((n, median));
        }
    }

    /// The pairs as JSON: `{"16": [[witan, reference], ...], ...}`.
    pub fn pairs_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (n, pairs) in &self.pairs {
            map.insert(n.to_string(), json!(pairs));
        }
        Value::Object(map)
    }

    pub fn at(&self, n: usize) -> Option<f64> {
        self.us.iter().find(|r| r.0 == n).map(|r| r.1)
    }

    /// The reference's CPU µs per message at `n`, if measured.
    pub fn cpu_at(&self, n: usize) -> Option<f64> {
        self.cpu.iter().find(|r| r.0 == n).map(|r| r.1)
    }
}

/// A `{"16": 65.0, ...}` object of the reference's JSON as (n, figure) pairs.
fn per_n_figures(
    path: &std::path::Path,
    per_n: &serde_json::Map<String, Value>,
) -> Result<Vec<(usize, f64)>, String> {
    let mut figures = Vec::with_capacity(per_n.len());
    for (n, x) in per_n {
        let n = n
            .parse::<usize>()
            .map_err(|e| format!("{}: n {n:?}: {e}", path.display()))?;
        let x = x
            .as_f64()
            .ok_or_else(|| format!("{}: n = {n}: not a number", path.display()))?;
        figures.push((n, x));
    }
    Ok(figures)
}
/// Live µs per receive at most this many times the batched figure.
const LIVE_OVER_BATCHED: f64 = 2.0;
/// Per-member commit CPU at the largest size at most this many times its value at 128.
pub const SCALE_OVER_128: f64 = 8.0;

fn ms(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// A table's header line and the separator line under it.
fn table_head(s: &mut String, header: &str) {
    let columns = header.matches('|').count().saturating_sub(1);
    let _ = writeln!(s, "{header}\n|{}", "---|".repeat(columns));
}

fn row(s: &mut String, workload: &str, n: usize, p: &PerCommit) {
    let _ = writeln!(
        s,
        "| {workload} | {n} | {} | {} | {} / {} | {} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} | {:.0} / {:.1} | {:.0} | {:.1} / {:.1} | {:.1} |",
        p.commits,
        ms(p.cpu_median),
        ms(p.user_cpu_median),
        ms(p.system_cpu_median),
        ms(p.cpu_max),
        p.bytes_median,
        p.bytes_max,
        p.signatures_median,
        p.signatures_max,
        p.round_signatures_median,
        p.round_signatures_max,
        p.certificate_bytes_median,
        p.allocations_median / 1e3,
        p.allocated_bytes_median / 1e6,
        p.page_faults_median,
        p.heap_rise_median / MIB,
        p.heap_rise_max / MIB,
        p.latency_ms as f64 / 1e3,
    );
}

/// (c′) The removal with each packet in a `receive` call of its own: what a member pays
/// when votes and round messages reach it one by one.
pub fn live_removal(s: &mut String, rows: &[Removal]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "### (c′) live removal: one packet per `receive`\n");
    table_head(
        s,
        "| n | wall ms | CPU ms | member CPU ms per commit (median / second-highest / max) | packets received |",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {} / {} / {} | {} |",
            r.n,
            r.wall.as_secs_f64() * 1e3,
            r.cpu.as_secs_f64() * 1e3,
            ms(r.per_commit.cpu_median),
            ms(r.per_commit.cpu_second),
            ms(r.per_commit.cpu_max),
            r.packets_received,
        );
    }
    s.push('\n');
}

/// Per-member cost of one commit in (a) and (c), and the growth from n = 128 to the largest
/// size measured.
pub fn per_commit(s: &mut String, formation: &[Formation], removal: &[Removal]) {
    if formation.is_empty() && removal.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Per member and commit: (a) formation, (c) removal, with the certificate\n"
    );
    table_head(
        s,
        "| workload | n | commits | CPU ms median | of it user / system median | CPU ms max | bytes received median | max | signatures checked median / max | of them prevotes + precommits median / max | certificate bytes read median | heap allocations median: thousands / MB | page faults median | heap rise in one call, MiB median / max | commit latency s (protocol) |",
    );
    for f in formation {
        row(s, "formation", f.n, &f.per_commit);
    }
    for r in removal {
        row(s, "removal", r.n, &r.per_commit);
    }
    for (name, rows) in [
        (
            "formation",
            formation
                .iter()
                .map(|f| (f.n, &f.per_commit))
                .collect::<Vec<_>>(),
        ),
        (
            "removal",
            removal.iter().map(|r| (r.n, &r.per_commit)).collect(),
        ),
    ] {
        let at = |n: usize| rows.iter().find(|r| r.0 == n).map(|r| r.1);
        let Some(largest) = rows.iter().map(|r| r.0).max().filter(|n| *n > 128) else {
            continue;
        };
        if let (Some(base), Some(top)) = (at(128), at(largest)) {
            let ratio = top.cpu_median.as_secs_f64() / base.cpu_median.as_secs_f64();
            // A part too small to be seen at n = 128 (the kernel's, at a tick's grain) has no
            // ratio worth printing.
            let part = |f: fn(&PerCommit) -> Duration| match f(base).as_secs_f64() {
                b if b >= 1e-4 => format!("×{:.2}", f(top).as_secs_f64() / b),
                _ => "—".to_string(),
            };
            let _ = writeln!(
                s,
                "\n{name}: median per-member CPU per commit at n = {largest} is ×{ratio:.2} its value at n = 128 (target ≤ ×{SCALE_OVER_128}) {} — user {}, system {} —, heap allocator {}{}",
                super::report::verdict(ratio <= SCALE_OVER_128),
                part(|p| p.user_cpu_median),
                part(|p| p.system_cpu_median),
                super::alloc::name(),
                if super::threads::on() {
                    ", a thread per member"
                } else {
                    ""
                }
            );
        }
    }
    s.push('\n');
}

/// (b″): live chat after a removal, beside (b′) before it.
pub fn live_after_removal(s: &mut String, chat: &[Chat], after: &[Chat]) {
    if after.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### (b″) live chat after the removal (one past epoch kept)\n"
    );
    table_head(
        s,
        "| n | µs/receive live after | CPU µs/receive | µs/receive live before (b′) | after ÷ before |",
    );
    for c in after {
        let before = chat
            .iter()
            .find(|b| b.live && b.n == c.n)
            .map(|b| b.us_per_receive);
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {} | {} |",
            c.n,
            c.us_per_receive,
            cpu_us_per_receive(c),
            before.map_or("—".into(), |b| format!("{b:.1}")),
            before.map_or("—".into(), |b| format!("{:.2}", c.us_per_receive / b)),
        );
    }
    s.push('\n');
}

/// (b′) beside (b) and the reference.
pub fn live(s: &mut String, chat: &[Chat], reference: &LiveReference) {
    let live: Vec<&Chat> = chat.iter().filter(|c| c.live).collect();
    if live.is_empty() {
        return;
    }
    let batched = |n: usize| {
        chat.iter()
            .find(|c| !c.live && c.n == n)
            .map(|c| c.us_per_receive)
    };
    let _ = writeln!(
        s,
        "### (b′) live chat: one packet per `receive` call ({} rounds)\n",
        live[0].rounds
    );
    table_head(
        s,
        "| n | receives | µs/receive live | µs/receive batched (b) | live ÷ batched | reference µs/message (one per call) | targets |",
    );
    for c in &live {
        let b = batched(c.n);
        let r = reference.at(c.n);
        let mut targets = Vec::new();
        if let Some(b) = b {
            let ok = c.us_per_receive <= LIVE_OVER_BATCHED * b;
            targets.push(format!(
                "≤ {LIVE_OVER_BATCHED} × batched {}",
                super::report::verdict(ok)
            ));
        }
        if let Some(r) = r {
            targets.push(format!(
                "≤ reference {}",
                super::report::verdict(c.us_per_receive <= r)
            ));
        }
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {} | {} | {} | {} |",
            c.n,
            c.receives,
            c.us_per_receive,
            b.map_or("—".into(), |b| format!("{b:.1}")),
            b.map_or("—".into(), |b| format!("{:.2}", c.us_per_receive / b)),
            r.map_or("—".into(), |r| format!("{r:.0}")),
            if targets.is_empty() {
                "—".into()
            } else {
                targets.join(", ")
            },
        );
    }
    let lo = live.iter().min_by_key(|c| c.n);
    let hi = live.iter().max_by_key(|c| c.n);
    if let (Some(lo), Some(hi)) = (lo, hi)
        && hi.n > lo.n
    {
        let growth = hi.us_per_receive / lo.us_per_receive;
        let log_growth = (hi.n as f64).ln() / (lo.n as f64).ln();
        let _ = writeln!(
            s,
            "\nGrowth of live µs/receive from n = {} to n = {}: ×{growth:.2} (log n grows ×{log_growth:.2}) {}",
            lo.n,
            hi.n,
            super::report::verdict(growth <= log_growth)
        );
    }
    let _ = writeln!(s, "\nReference: {}.", reference.source);
    pairs(s, reference);
    s.push('\n');
    live_cpu(s, chat, reference);
}

/// Each n's alternated runs: witan ÷ reference pair by pair, and in how many witan was not
/// slower.
fn pairs(s: &mut String, reference: &LiveReference) {
    for (n, pairs) in &reference.pairs {
        let ratios: Vec<String> = pairs
            .iter()
            .map(|(w, r)| format!("×{:.2}", w / r))
            .collect();
        let met = pairs.iter().filter(|(w, r)| w <= r).count();
        let _ = writeln!(
            s,
            "n = {n}: witan ÷ reference pair by pair {}; witan not slower in {met} of {}; {}.",
            ratios.join(", "),
            pairs.len(),
            sign_test(met, pairs.len())
        );
    }
}

/// What `ahead` pairs of `total` can tell, by a one-sided sign test at 5 %: on a shared
/// machine a run's median flips with the host, so the report says when the pairs do not
/// separate the two sides rather than reading a tie as a verdict.
fn sign_test(ahead: usize, total: usize) -> String {
    let p_ahead = binomial_tail(ahead, total);
    let p_behind = binomial_tail(total - ahead, total);
    if p_ahead < 0.05 {
        format!("witan ahead by a sign test (p = {p_ahead:.3})")
    } else if p_behind < 0.05 {
        format!("witan behind by a sign test (p = {p_behind:.3})")
    } else {
        format!(
            "the pairs show no difference (sign test: p = {p_ahead:.2} ahead, {p_behind:.2} behind)"
        )
    }
}

/// P(X ≥ k) for X ~ Binomial(n, ½), summed in logarithms (no overflow for any n).
fn binomial_tail(k: usize, n: usize) -> f64 {
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=n {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        if i >= k {
            tail += (ln_choose + ln_half_n).exp();
        }
    }
    tail.min(1.0)
}

/// CPU of the whole chat (sends included) per receive: steadier than wall time on a shared
/// machine.
pub fn cpu_us_per_receive(c: &Chat) -> f64 {
    c.cpu.as_secs_f64() * 1e6 / c.receives.max(1) as f64
}

/// (b′) by CPU beside (b) and the reference: the receive calls' CPU (the figure the
/// reference's own CPU clock gives), and the whole chat's with its sends.
fn live_cpu(s: &mut String, chat: &[Chat], reference: &LiveReference) {
    table_head(
        s,
        "| n | (b) batched, CPU µs per receive | (b′) live, CPU µs per receive | live ÷ batched | reference CPU µs/message | (b′) whole chat with its sends, CPU µs per receive | targets |",
    );
    for c in chat.iter().filter(|c| c.live) {
        let b = chat
            .iter()
            .find(|b| !b.live && b.n == c.n)
            .map(|b| b.receive_cpu_us);
        let r = reference.cpu_at(c.n);
        let live = c.receive_cpu_us;
        let mut targets = Vec::new();
        if let Some(b) = b {
            let ok = live <= LIVE_OVER_BATCHED * b;
            targets.push(format!("≤ 2 × batched {}", super::report::verdict(ok)));
        }
        if let Some(r) = r {
            targets.push(format!("≤ reference {}", super::report::verdict(live <= r)));
        }
        let _ = writeln!(
            s,
            "| {} | {} | {live:.1} | {} | {} | {:.1} | {} |",
            c.n,
            b.map_or("—".into(), |b| format!("{b:.1}")),
            b.map_or("—".into(), |b| format!("{:.2}", live / b)),
            r.map_or("—".into(), |r| format!("{r:.1}")),
            cpu_us_per_receive(c),
            targets.join(", "),
        );
    }
    s.push('\n');
}

/// The JSON keys of a [`PerCommit`].
pub fn per_commit_json(p: &PerCommit) -> Value {
    json!({
        "commits": p.commits,
        "member_cpu_ms_per_commit_median": p.cpu_median.as_secs_f64() * 1e3,
        "member_cpu_ms_per_commit_max": p.cpu_max.as_secs_f64() * 1e3,
        "member_cpu_ms_per_commit_second": p.cpu_second.as_secs_f64() * 1e3,
        "member_bytes_received_per_commit_median": p.bytes_median,
        "member_bytes_received_per_commit_max": p.bytes_max,
        "member_signatures_checked_per_commit_median": p.signatures_median,
        "member_signatures_checked_per_commit_max": p.signatures_max,
        "member_round_signatures_checked_per_commit_median": p.round_signatures_median,
        "member_round_signatures_checked_per_commit_max": p.round_signatures_max,
        "member_certificate_bytes_per_commit_median": p.certificate_bytes_median,
        "member_allocations_per_commit_median": p.allocations_median,
        "member_page_faults_per_commit_median": p.page_faults_median,
        "member_user_cpu_ms_per_commit_median": p.user_cpu_median.as_secs_f64() * 1e3,
        "member_system_cpu_ms_per_commit_median": p.system_cpu_median.as_secs_f64() * 1e3,
        "member_heap_rise_bytes_median": p.heap_rise_median,
        "member_heap_rise_bytes_max": p.heap_rise_max,
        "member_allocated_bytes_per_commit_median": p.allocated_bytes_median,
        "commit_latency_ms_protocol": p.latency_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::{binomial_tail, sign_test};

    #[test]
    fn the_binomial_tail_sums_the_half_binomial_from_k() {
        assert!((binomial_tail(0, 10) - 1.0).abs() < 1e-12);
        assert!((binomial_tail(3, 3) - 0.125).abs() < 1e-12);
        // P(X ≥ 8) for n = 10: (45 + 10 + 1) / 1024.
        assert!((binomial_tail(8, 10) - 56.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_tail(11, 10), 0.0);
        let far = binomial_tail(600, 1000);
        assert!(far > 0.0 && far < 1e-9, "{far}");
    }

    #[test]
    fn a_sign_test_calls_a_side_only_when_the_pairs_separate_them() {
        assert!(sign_test(10, 10).starts_with("witan ahead"));
        assert!(sign_test(0, 10).starts_with("witan behind"));
        assert!(sign_test(32, 60).starts_with("the pairs show no difference"));
        // Three of three is not enough for a side at 5 %.
        assert!(sign_test(3, 3).starts_with("the pairs show no difference"));
    }
}
