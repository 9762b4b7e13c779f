//! witan benchmark, side by side with the reference de-mls 4.1.0.
//!
//! ```text
//! cargo run --release --example bench -- --ns 4,16,64,128 --json bench.json
//! cargo run --release --example bench -- --only chat,floor --ns 16
//! scripts/bench-reference.sh --json ref.json && \
//!   cargo run --release --example bench -- --only chat,live --ns 16,64,128 --reference ref.json
//! cargo run --release --example bench -- --only chat,live --ns 16,64,128 --run-reference
//! ```
//!
//! Workloads (JSON in the bench format; results: `docs/bench.md`):
//! (a) `formation`, (b) `chat`, (b′) `live` (the chat, one packet per `receive` call),
//! (c) `removal`, (c′) `live-removal` (the removal, one packet per `receive` call; run
//! when `removal` is not asked for: one member is removed per world) on N `WitanClient`s
//! with their own SQLite files in one process (`bench/world.rs`, `bench/workloads.rs`);
//! (d) `wakeup`, a push wake-up in a fresh process (`bench/wakeup.rs`); (d′)
//! `wakeup-large`, the same in the extension role for a 1,000-member group (`bench/wakeup_large.rs`, not in the default
//! set: its setup takes a quarter of an hour); (e) `floor`, the same chat on plain
//! OpenMLS in memory (`bench/floor.rs`); (f) `size`, the stripped release cdylib. Prints a
//! markdown table (`bench/report.rs`) and, with `--json`, writes the results as JSON. (b′)
//! is held to the reference's figures measured on this machine when `--reference` names the
//! JSON of `scripts/bench-reference.sh`, or measured in the same run with `--run-reference`
//! (the built harness, `bench-reference/target/release/witan-bench-reference` of this
//! checkout, run `--pairs K` times (3 by default) on each n, each run followed by one of
//! witan's (b′) on the same world; medians of both); to the issue's otherwise.

#[path = "bench/alloc.rs"]
mod alloc;
#[path = "bench/alone.rs"]
mod alone;
#[path = "bench/floor.rs"]
mod floor;
#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/scale_report.rs"]
mod scale_report;
#[path = "bench/threads.rs"]
mod threads;
#[path = "bench/wakeup.rs"]
mod wakeup;
#[path = "bench/wakeup_large.rs"]
mod wakeup_large;
#[path = "bench/workloads.rs"]
mod workloads;
#[path = "bench/world.rs"]
mod world;

/// Counts each thread's allocations; mimalloc or the system's allocator (`alloc`).
#[global_allocator]
static ALLOCATOR: alloc::BenchAllocator = alloc::BenchAllocator;

use std::collections::BTreeSet;
use std::path::PathBuf;

use report::Results;
use world::{BenchResult, World};

const ALL: [&str; 10] = [
    "formation",
    "chat",
    "live",
    "removal",
    "live-removal",
    "live-after-removal",
    "wakeup",
    "wakeup-large",
    "floor",
    "size",
];

struct Args {
    ns: Vec<usize>,
    json: Option<PathBuf>,
    only: BTreeSet<String>,
    /// Hidden: keep the databases in this directory (for inspection and profiling).
    keep: Option<PathBuf>,
    /// Which member (c) and (c′) remove.
    remove: workloads::Target,
    /// Where the reference's live figures come from, if measured on this machine.
    reference: Option<Reference>,
    /// With `--run-reference`: how many times (b′) and the reference alternate on each n.
    pairs: usize,
}

/// The reference's live figures: the JSON of an earlier `scripts/bench-reference.sh` run, or
/// runs of the built harness in this one, alternated with witan's (b′) on each n.
enum Reference {
    Json(PathBuf),
    Run,
}

/// The reference harness, as `scripts/bench-reference.sh` builds it (from any directory).
const REFERENCE_HARNESS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/bench-reference/target/release/witan-bench-reference"
);

/// Runs the reference harness on `n` and reads its µs per message: wall, and CPU if it
/// reports it.
fn run_reference(n: usize, dir: &std::path::Path) -> BenchResult<(f64, Option<f64>)> {
    let json = dir.join("reference.json");
    eprintln!("reference: {REFERENCE_HARNESS} --ns {n}");
    let status = std::process::Command::new(REFERENCE_HARNESS)
        .args(["--ns", &n.to_string(), "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            format!("{REFERENCE_HARNESS}: {e} (build it with scripts/bench-reference.sh)")
        })?;
    if !status.success() {
        return Err(format!("{REFERENCE_HARNESS} failed: {status}").into());
    }
    let measured = scale_report::LiveReference::read(&json)?;
    let wall = measured
        .at(n)
        .ok_or_else(|| format!("{REFERENCE_HARNESS}: no figure for n = {n}"))?;
    Ok((wall, measured.cpu_at(n)))
}

/// Alternated runs of the reference then witan's (b′), `pairs` of each on the world `w`, so
/// that both are measured in the same minutes of a shared machine (single runs move by a
/// third from one minute to the next). Returns witan's run of median µs per receive; the
/// pairs and the reference's median go to `reference`.
fn live_beside_reference(
    w: &mut World,
    pairs: usize,
    dir: &std::path::Path,
    reference: &mut scale_report::LiveReference,
) -> BenchResult<workloads::Chat> {
    let n = w.n();
    let mut runs = Vec::with_capacity(pairs);
    let mut measured = Vec::with_capacity(pairs);
    let mut cpu = Vec::with_capacity(pairs);
    for pair in 0..pairs {
        eprintln!(
            "n={n}: live chat beside the reference (pair {} of {pairs})",
            pair + 1
        );
        let (theirs, theirs_cpu) = run_reference(n, dir)?;
        let ours = workloads::chat(w, true)?;
        measured.push((ours.us_per_receive, theirs));
        cpu.extend(theirs_cpu);
        runs.push(ours);
    }
    reference.add_pairs(n, measured, cpu);
    runs.sort_by(|a, b| a.us_per_receive.total_cmp(&b.us_per_receive));
    let median = pairs / 2;
    runs.into_iter()
        .nth(median)
        .ok_or_else(|| "--pairs must be at least 1".into())
}

fn parse_args(args: &[String]) -> BenchResult<Args> {
    let mut parsed = Args {
        ns: vec![4, 16, 64, 128],
        json: None,
        only: ALL
            .iter()
            .filter(|w| **w != "wakeup-large")
            .map(|s| s.to_string())
            .collect(),
        keep: None,
        remove: workloads::Target::Last,
        reference: None,
        pairs: 3,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--ns" => {
                parsed.ns = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()?;
                if parsed.ns.iter().any(|n| *n < 2) {
                    return Err("--ns: groups need at least 2 members".into());
                }
            }
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "--keep" => parsed.keep = Some(PathBuf::from(value()?)),
            "--reference" => parsed.reference = Some(Reference::Json(PathBuf::from(value()?))),
            "--run-reference" => parsed.reference = Some(Reference::Run),
            "--pairs" => {
                parsed.pairs = value()?.parse()?;
                if parsed.pairs == 0 {
                    return Err("--pairs: at least one".into());
                }
            }
            "--remove" => {
                parsed.remove = match value()?.as_str() {
                    "last" => workloads::Target::Last,
                    "epoch-steward" => workloads::Target::EpochSteward,
                    other => return Err(format!("--remove: unknown member {other:?}").into()),
                }
            }
            "--only" => {
                parsed.only = value()?.split(',').map(|s| s.trim().to_string()).collect();
                if let Some(bad) = parsed.only.iter().find(|w| !ALL.contains(&w.as_str())) {
                    return Err(format!("--only: unknown workload {bad:?}").into());
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [--ns 4,16,64,128] [--json PATH] [--only {}] \
                     [--remove last|epoch-steward] [--reference PATH | --run-reference [--pairs K]]",
                    ALL.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(parsed)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("__wakeup") => wakeup::child(&args[1..]),
        Some("__alone") => alone::child(&args[1..]),
        _ => parse_args(&args).and_then(|a| run(&a)),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// Formation runs per group size up to [`REPEATED_UP_TO`] members; the median (by CPU) is
/// reported. Larger groups form once: their CPU is many ticks, and a run takes minutes.
const FORMATION_RUNS: usize = 3;
const REPEATED_UP_TO: usize = 128;

fn remove_unless_kept(args: &Args, dir: &std::path::Path) -> BenchResult<()> {
    if args.keep.is_none() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

/// Whether a workload asked for runs in the world a formation leaves.
fn after_formation(args: &Args) -> bool {
    [
        "chat",
        "live",
        "removal",
        "live-removal",
        "live-after-removal",
    ]
    .iter()
    .any(|w| args.only.contains(*w))
}

/// The run of median CPU among `runs` (the lower middle of an even count).
fn median_run<T>(
    mut runs: Vec<T>,
    cpu: impl Fn(&T) -> (std::time::Duration, std::time::Duration),
) -> Option<T> {
    runs.sort_by_key(|r| cpu(r));
    let middle = runs.len().saturating_sub(1) / 2;
    runs.into_iter().nth(middle)
}

/// Formation at `n` and the workloads that continue in the world it leaves.
///
/// Up to [`REPEATED_UP_TO`] members the formation runs [`FORMATION_RUNS`] times, each in a
/// fresh world, and the run of median CPU is reported (a few tenths of a second are a few
/// dozen 10 ms ticks). When the removal is asked for without chat, it runs in each of those
/// worlds too and its median is reported, so that the small groups' figure, the divisor of
/// the 1,000-member ratios, is not one run's. The other workloads continue in the last world.
fn in_formed_worlds(
    args: &Args,
    n: usize,
    root: &std::path::Path,
    results: &mut Results,
) -> BenchResult<()> {
    let on = |w: &str| args.only.contains(w);
    let formation_runs = if n <= REPEATED_UP_TO {
        FORMATION_RUNS
    } else {
        1
    };
    let repeat_removal = formation_runs > 1 && on("removal") && !on("chat") && !on("live");
    let mut formations = Vec::with_capacity(formation_runs);
    let mut removals = Vec::new();
    let mut world: Option<World> = None;
    for run in 0..formation_runs {
        let dir = root.join(format!("n{n}-{run}"));
        if let Some(mut w) = world.take() {
            if repeat_removal {
                w.settle(120_000)?;
                removals.push(removal_in(&mut w, args)?);
            }
            drop(w);
            remove_unless_kept(args, &root.join(format!("n{n}-{}", run - 1)))?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut w = World::new(n, &dir)?;
        eprintln!("n={n}: formation (run {} of {formation_runs})", run + 1);
        formations.push(workloads::formation(&mut w)?);
        world = Some(w);
    }
    let Some(mut w) = world else {
        return Err("no formation run".into());
    };
    if on("formation")
        && let Some(f) = median_run(formations, |f| (f.cpu, f.cpu_precise))
    {
        results.formation.push(f);
    }
    after_formation_in(&mut w, args, results, root, removals)?;
    drop(w);
    remove_unless_kept(args, &root.join(format!("n{n}-{}", formation_runs - 1)))
}

/// One batched removal in `w`; the copies of its members to replay alone go beside the
/// world's directory (`N-alone`), which outlives the world (`alone::replay_side_by_side`).
fn removal_in(w: &mut World, args: &Args) -> BenchResult<workloads::Removal> {
    eprintln!("n={}: removal", w.n());
    let world_dir = std::path::PathBuf::from(w.path(0));
    let world_dir = world_dir
        .parent()
        .ok_or("a database path without a directory")?;
    let name = world_dir
        .file_name()
        .ok_or("a world directory without a name")?
        .to_string_lossy();
    let scratch = world_dir.with_file_name(format!("{name}-alone"));
    alone::removal_with_replays(w, args.remove, &scratch)
}

/// The workloads that continue in the last formed world; `removals` holds the removals
/// already run in the earlier worlds.
fn after_formation_in(
    w: &mut World,
    args: &Args,
    results: &mut Results,
    root: &std::path::Path,
    mut removals: Vec<workloads::Removal>,
) -> BenchResult<()> {
    let on = |x: &str| args.only.contains(x);
    let n = w.n();
    if !after_formation(args) {
        return Ok(());
    }
    w.settle(120_000)?;
    if on("chat") {
        eprintln!("n={n}: chat");
        results.chat.push(workloads::chat(w, false)?);
    }
    if on("live") {
        let live = match args.reference {
            Some(Reference::Run) => {
                live_beside_reference(w, args.pairs, root, &mut results.live_reference)?
            }
            _ => {
                eprintln!("n={n}: live chat");
                workloads::chat(w, true)?
            }
        };
        results.chat.push(live);
    }
    // One member is removed per world: the live removal runs when the batched one is not
    // asked for.
    if on("removal") || on("live-after-removal") {
        removals.push(removal_in(w, args)?);
        let runs = removals.len();
        if let Some(mut r) = median_run(removals, |r| (r.cpu, r.cpu_precise)) {
            r.runs = runs;
            results.removal.push(r);
        }
    } else if on("live-removal") {
        eprintln!("n={n}: live removal");
        results
            .live_removal
            .push(workloads::removal(w, true, args.remove)?);
    }
    // (b″): the members now keep the epoch before the removal as a past epoch, with the
    // ratchets of everyone who chatted in it.
    if on("live-after-removal") {
        eprintln!("n={n}: live chat after the removal");
        results.live_after_removal.push(workloads::chat(w, true)?);
    }
    Ok(())
}

fn run(args: &Args) -> BenchResult<()> {
    let on = |w: &str| args.only.contains(w);
    let tmp = tempfile::Builder::new().prefix("witan-bench-").tempdir()?;
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let mut results = Results {
        machine: measure::machine(),
        live_reference: match &args.reference {
            Some(Reference::Json(path)) => scale_report::LiveReference::read(path)?,
            Some(Reference::Run) => scale_report::LiveReference::alternated(args.pairs),
            None => scale_report::LiveReference::default(),
        },
        ..Results::default()
    };
    eprintln!("machine: {}", results.machine);
    let after_formation = after_formation(args);
    for &n in &args.ns {
        if on("formation") || after_formation {
            in_formed_worlds(args, n, &root, &mut results)?;
        }
        if on("floor") {
            eprintln!("n={n}: floor");
            results.floor.push(floor::floor(n)?);
        }
    }
    alone::replay_side_by_side(&mut results.removal)?;
    if on("wakeup") {
        eprintln!("wake-up: building the databases");
        let dir = root.join("wakeup");
        std::fs::create_dir_all(&dir)?;
        results.wakeup = wakeup::run(&dir)?;
    }
    if on("wakeup-large") {
        eprintln!("wake-up (d′): building the 1,000-member conversation");
        let dir = root.join("wakeup-large");
        std::fs::create_dir_all(&dir)?;
        results.wakeup_large = Some(wakeup_large::run(&dir)?);
    }
    if on("size") {
        results.size = Some(report::cdylib_size()?);
    }
    results.loadavg_after = measure::machine();
    print!("{}", results.markdown());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results.json())? + "\n")?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
