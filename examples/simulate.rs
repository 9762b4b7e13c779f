//! Runs the deterministic simulator (`tests/sim/`, the same code the CI sweep runs) from the
//! command line.
//!
//! ```sh
//! cargo run --release --example simulate -- --seeds 1000 --members 12
//! cargo run --release --example simulate -- --seed 42 --trace
//! cargo run --release --example simulate -- --seeds 200 --faults +equivocation,-crashes
//! cargo run --release --example simulate -- --ci --seed 17 --trace   # a CI sweep seed
//! cargo run --release --example simulate -- --ci --seeds 10000 --jobs 2   # the long sweep
//! cargo run --release --example simulate -- --ci --only churn,network --exact --seed 2 --trace
//! cargo run --release --example simulate -- --byzantine-member --seeds 2000 --jobs 2
//! cargo run --release --example simulate -- --sleeping-phones --members 8 --seeds 1000
//! ```
//!
//! `--sleeping-phones` runs the sleeping-phones family instead (`tests/sim/sleeping.rs`:
//! phones asleep 90 % of the time, woken by pushes in the extension role, opening the app now
//! and then) and prints, over the seeds, the median and 99th percentile of the time from
//! `request_to_join` to `Joined`, from `propose_removal` to the commit and from the epoch
//! steward falling silent to the commit that takes its slot, the seeds where one of them
//! never completed, and the safety violations; `--per-seed` adds one line per seed with its
//! measures (so that runs over parts of a seed range can be added up).
//!
//! The default run is `Config::full(12)`: every fault family, one chaos round. Options
//! apply in order: `--ci` (the CI sweep's shape: 5 members, two rounds, keeping the
//! families; with the default families it is the CI sweep), `--ci-bounded` (the CI sweep's
//! mix before commits were certified: no slow network, long partitions, slow restarts or
//! equivocation; regressions F11–F17 are pinned to its seeds), `--ci-churn` / `--ci-steady`
//! (the reduced fault sets of the first CI sweep, kept to compare with its reports),
//! `--byzantine-member` (the byzantine-member family's sweep: its attacks, churn and a
//! bounded hostile network in every run, in the CI sweep's shape), `--only LIST`
//! (exactly these families), `--seeds N` (run seeds `start..start+N`), `--start S`, `--seed N`
//! (one seed), `--members M`, `--rounds R`, `--chaos-ms T`, `--settle-ms T`, `--faults LIST`
//! (`+name` or `-name` per family: network, partitions, long-partitions, crashes, offline, skew, silent,
//! bogus, replay, equivocation, byzantine-member, churn, burst-joins, slow-network,
//! long-partitions, slow-restart), `--exact` (every enabled family is active in every run, instead of a random
//! mix), `--no-scores` (do not require agreement on peer scores), `--jobs J` (threads),
//! `--trace` (print the event trace of a single seed), `--check-determinism` (run each seed
//! twice and compare traces).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::collections::BTreeMap;
use std::time::Instant;

use sim::{Config, Faults, Summary, Violation, run_seed};

struct Args {
    cfg: Config,
    start: u64,
    count: u64,
    single: Option<u64>,
    jobs: usize,
    check_determinism: bool,
    sleeping: bool,
    per_seed: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        cfg: Config::full(12),
        start: 0,
        count: 100,
        single: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        check_determinism: false,
        sleeping: false,
        per_seed: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match a.as_str() {
            "--seeds" => args.count = num(value("--seeds")?)?,
            "--start" => args.start = num(value("--start")?)?,
            "--seed" => args.single = Some(num(value("--seed")?)?),
            "--members" => args.cfg.members = num(value("--members")?)? as usize,
            "--ci" => args.cfg = Config::ci(args.cfg.faults),
            "--ci-bounded" => args.cfg = Config::ci(Faults::bounded()),
            "--ci-churn" => args.cfg = Config::ci(Faults::ci_churn()),
            "--ci-steady" => args.cfg = Config::ci(Faults::ci_steady()),
            "--byzantine-member" => {
                args.cfg = Config {
                    mix_chance: 1.0,
                    ..Config::ci(Faults::byzantine_member_family())
                }
            }
            "--only" => {
                args.cfg.faults = Faults::none();
                for name in value("--only")?.split(',').filter(|s| !s.is_empty()) {
                    args.cfg.faults.set(name, true)?;
                }
            }
            "--rounds" => args.cfg.rounds = num(value("--rounds")?)? as usize,
            "--chaos-ms" => args.cfg.chaos_ms = num(value("--chaos-ms")?)?,
            "--settle-ms" => args.cfg.settle_ms = num(value("--settle-ms")?)?,
            "--jobs" => args.jobs = num(value("--jobs")?)?.max(1) as usize,
            "--trace" => args.cfg.trace = true,
            "--exact" => args.cfg.mix_chance = 1.0,
            "--no-scores" => args.cfg.check_scores = false,
            "--check-determinism" => args.check_determinism = true,
            "--sleeping-phones" => args.sleeping = true,
            "--per-seed" => args.per_seed = true,
            "--faults" => {
                for item in value("--faults")?.split(',').filter(|s| !s.is_empty()) {
                    let (on, name) = match item.strip_prefix('-') {
                        Some(name) => (false, name),
                        None => (true, item.strip_prefix('+').unwrap_or(item)),
                    };
                    args.cfg.faults.set(name, on)?;
                }
            }
            "--help" | "-h" => return Err("see the doc comment of examples/simulate.rs".into()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.cfg.members < 3 {
        return Err("--members must be at least 3".into());
    }
    Ok(args)
}

fn print_stats(s: &Summary) {
    let st = &s.stats;
    println!(
        "seed {} ok [{}]: {:.0}s virtual, {} calls, {} packets delivered ({} lost and retried), \
         {} chats, epoch {}, {} members, {} crashes, {} offline, {} partitions, \
         {} byzantine packets, {} chats outside the MLS window, {} joins expired",
        s.seed,
        s.mix,
        st.virtual_ms as f64 / 1000.0,
        st.calls,
        st.deliveries,
        st.dropped,
        st.chats,
        st.final_epoch,
        st.final_members,
        st.crashes,
        st.offline,
        st.partitions,
        st.byzantine_packets,
        st.stale_chats,
        st.join_expired
    );
}

fn print_violation(v: &Violation) {
    for line in &v.trace {
        println!("{line}");
    }
    println!("VIOLATION {v}");
}

/// One seed's outcome: the seed, its summary or violation, and its trace if asked for.
type SeedResult = (u64, Result<Summary, Box<Violation>>, Option<String>);

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            std::process::exit(2);
        }
    };
    if args.sleeping {
        sleeping(&args);
        return;
    }
    if let Some(seed) = args.single {
        run_single(seed, &args);
        return;
    }
    let t = Instant::now();
    let seeds: Vec<u64> = (args.start..args.start + args.count).collect();
    let jobs = args.jobs.min(seeds.len().max(1));
    let mut results = across_jobs(&seeds, jobs, |seed| run_checked(seed, &args));
    results.sort_by_key(|(seed, _, _)| *seed);
    eprintln!();
    if report(&results, &args, t, jobs) > 0 {
        std::process::exit(1);
    }
}

/// One seed with its trace printed; exits with 1 on a violation.
fn run_single(seed: u64, args: &Args) {
    let t = Instant::now();
    match run_seed(seed, &args.cfg) {
        Ok(s) => {
            for line in &s.trace {
                println!("{line}");
            }
            print_stats(&s);
        }
        Err(v) => {
            print_violation(&v);
            std::process::exit(1);
        }
    }
    eprintln!("{:.2}s", t.elapsed().as_secs_f64());
}

/// `f` of every seed, the seeds dealt round-robin to `jobs` threads; in no particular order.
fn across_jobs<T: Send>(seeds: &[u64], jobs: usize, f: impl Fn(u64) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                let f = &f;
                s.spawn(move || {
                    seeds
                        .iter()
                        .skip(j)
                        .step_by(jobs)
                        .map(|seed| {
                            let r = f(*seed);
                            eprint!(".");
                            r
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// One seed, run twice when determinism is checked: the second run's trace must be the
/// first's.
fn run_checked(seed: u64, args: &Args) -> SeedResult {
    let mut cfg = args.cfg.clone();
    cfg.trace = args.check_determinism;
    let r = run_seed(seed, &cfg);
    if !args.check_determinism {
        return (seed, r, None);
    }
    let again = run_seed(seed, &cfg);
    let (a, b) = (
        sim::replay_key(sim::trace_of(&r)),
        sim::replay_key(sim::trace_of(&again)),
    );
    let mismatch = (a != b).then(|| {
        let at = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        format!(
            "trace differs at line {at}: {:?} vs {:?}",
            a.get(at),
            b.get(at)
        )
    });
    (seed, r, mismatch)
}

/// Prints every failure and the sweep's totals; returns how many seeds failed.
fn report(results: &[SeedResult], args: &Args, started: Instant, jobs: usize) -> usize {
    let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let (mut calls, mut deliveries, mut stale, mut expired, mut nondeterministic) = (0, 0, 0, 0, 0);
    for (seed, r, mismatch) in results {
        if let Some(m) = mismatch {
            nondeterministic += 1;
            println!("seed {seed}: NOT DETERMINISTIC: {m}");
        }
        match r {
            Ok(s) => {
                calls += s.stats.calls;
                deliveries += s.stats.deliveries;
                stale += s.stats.stale_chats;
                expired += s.stats.join_expired;
            }
            Err(v) => {
                println!("FAIL {v}");
                by_kind.entry(v.kind.clone()).or_default().push(*seed);
            }
        }
    }
    let failed: usize = by_kind.values().map(Vec::len).sum();
    println!(
        "{} seeds, {} members: {} passed, {} failed, in {:.1}s ({} jobs); {} client calls, {} packets delivered, {} chats outside the MLS window, {} joins expired{}",
        results.len(),
        args.cfg.members,
        results.len() - failed,
        failed,
        started.elapsed().as_secs_f64(),
        jobs,
        calls,
        deliveries,
        stale,
        expired,
        if args.check_determinism {
            format!(", {nondeterministic} not deterministic")
        } else {
            String::new()
        }
    );
    for (kind, seeds) in &by_kind {
        let shown: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
        println!("  {kind}: {} seeds, e.g. {}", seeds.len(), shown.join(" "));
    }
    failed
}

/// The median and 99th percentile of `v` in seconds, and how many values there are.
fn spread(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "—".into();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    format!(
        "median {:.1} s, p99 {:.1} s (n = {})",
        at(0.5),
        at(0.99),
        v.len()
    )
}

/// The sleeping-phones family over the seeds (see the module doc).
fn sleeping(args: &Args) {
    let cfg = sim::sleeping::SleepConfig {
        trace: args.cfg.trace && args.single.is_some(),
        ..sim::sleeping::SleepConfig::new(args.cfg.members)
    };
    let seeds: Vec<u64> = match args.single {
        Some(s) => vec![s],
        None => (args.start..args.start + args.count).collect(),
    };
    let t = Instant::now();
    let jobs = args.jobs.min(seeds.len().max(1));
    let mut outcomes = across_jobs(&seeds, jobs, |seed| sim::sleeping::check(seed, &cfg));
    eprintln!();
    outcomes.sort_by_key(|o| o.seed);
    let joins: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.joins.iter().flatten().copied())
        .collect();
    let removals: Vec<u64> = outcomes.iter().filter_map(|o| o.removal).collect();
    let reelections: Vec<u64> = outcomes.iter().filter_map(|o| o.reelection).collect();
    let incomplete: Vec<&sim::sleeping::Outcome> =
        outcomes.iter().filter(|o| o.incomplete()).collect();
    let violations: usize = outcomes.iter().map(|o| o.violations.len()).sum();
    for line in outcomes.iter().flat_map(|o| &o.trace) {
        println!("{line}");
    }
    if args.per_seed {
        for o in &outcomes {
            println!(
                "seed {} joins {:?} removal {:?} re-election {:?} violations {} error {:?}",
                o.seed,
                o.joins,
                o.removal,
                o.reelection,
                o.violations.len(),
                o.error
            );
        }
    }
    for o in incomplete.iter().take(20) {
        println!(
            "incomplete: seed {} joins {:?} removal {:?} re-election {:?} error {:?}",
            o.seed, o.joins, o.removal, o.reelection, o.error
        );
    }
    for o in outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .take(20)
    {
        println!("violations: seed {} {:?}", o.seed, o.violations);
    }
    println!(
        "sleeping phones, {} members, {} seeds in {:.0} s ({jobs} jobs)",
        cfg.members,
        outcomes.len(),
        t.elapsed().as_secs_f64()
    );
    println!("  request_to_join → Joined: {}", spread(joins));
    println!("  propose_removal → commit: {}", spread(removals));
    println!(
        "  silent epoch steward → its slot taken: {}",
        spread(reelections)
    );
    println!(
        "  seeds where something never completed: {}; safety violations: {violations}",
        incomplete.len()
    );
}
