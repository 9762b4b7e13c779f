//! A thread of its own for each member's calls (`WITAN_BENCH_THREADS=member`), so that each
//! member allocates from a heap of its own, as a phone's one client does.
//!
//! The bench runs all members in one process. glibc gives every thread an arena of its own
//! (up to `M_ARENA_MAX`, raised here), so a member whose calls all run on one thread takes
//! its memory from one arena, whose bins hold only that member's free chunks — where on the
//! main thread a thousand members share one. Each member's client is opened on its thread
//! too (`World::new`), so what the client keeps from the start is in that arena. The calls
//! still run one at a time: the main thread hands a call over and waits for it, and the
//! member's CPU and allocations are read on the member's thread.

use std::sync::Once;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::thread::JoinHandle;

/// The environment variable that turns member threads on (`member`).
pub const VARIABLE: &str = "WITAN_BENCH_THREADS";

/// Arenas glibc may make: one per member thread of the largest world, and room to spare.
const ARENAS: i32 = 8192;

/// A boxed call, its borrows erased (see [`Worker::run`]).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// One member's thread.
pub struct Worker {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(name: String) -> std::io::Result<Worker> {
        let (jobs, queue): (Sender<Job>, Receiver<Job>) = channel();
        let thread = std::thread::Builder::new()
            .name(name)
            // As the main thread's: the calls ran there before.
            .stack_size(8 << 20)
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job();
                }
            })?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on this member's thread and returns what it returned.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let (done, result) = sync_channel(1);
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            let _ = done.send(f());
        });
        // SAFETY: the job may borrow from the caller's stack. This function does not return
        // before the job has run to its end or was dropped (`recv` below waits until the
        // job's sender is used or gone), so no borrow outlives what it borrows.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        match result.recv() {
            Ok(r) if sent => r,
            // The thread is gone, or the call panicked there: the bench cannot go on.
            _ => panic!("a member's thread failed"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A thread per member, if [`VARIABLE`] asks for them.
pub struct MemberThreads {
    workers: Vec<Worker>,
}

impl MemberThreads {
    /// `n` threads if the environment asks for them, else `None`.
    pub fn from_env(n: usize) -> std::io::Result<Option<MemberThreads>> {
        if !on() {
            return Ok(None);
        }
        static RAISE: Once = Once::new();
        RAISE.call_once(|| {
            // SAFETY: `mallopt` with a documented parameter; glibc reads the limit when it
            // first needs more arenas, which is after this (no member thread exists yet).
            unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        });
        let workers = (0..n)
            .map(|i| Worker::spawn(format!("member-{i}")))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Some(MemberThreads { workers }))
    }

    pub fn get(&self, i: usize) -> Option<&Worker> {
        self.workers.get(i)
    }
}

/// Member `i`'s thread, if there are member threads.
pub fn worker(threads: Option<&MemberThreads>, i: usize) -> Option<&Worker> {
    threads.and_then(|t| t.get(i))
}

/// Whether member threads are on (for the report).
pub fn on() -> bool {
    std::env::var(VARIABLE).ok().as_deref() == Some("member")
}
