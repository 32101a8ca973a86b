//! The cores' work queue: one thread per core runs the face and voice jobs, each taking the
//! next waiting job as soon as it finishes one.
//!
//! A job handed from an async task to a blocking thread through a semaphore needs two wake-ups
//! between one job's end and the next one's start (the waiting task, then a blocking thread);
//! under load the cores sat idle about 4% of the time in them. Here a worker that finishes a
//! job takes the next one from the queue itself, on the same thread.
//!
//! The queue is bounded (`EngineQueue::max_waiting` beyond the idle workers) and a job that has
//! not started within `EngineQueue::max_wait` is refused: latency stays bounded under overload.
//! A job whose request is cancelled while it waits is never run; one that has started runs to
//! its end on its worker, which is its core: the work cannot be stopped half-way, and a core
//! freed early would only start a second job on a busy CPU.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::{CoreError, EngineQueue};

/// One waiting job: its work, and whether it still waits (cleared by whichever comes first:
/// a worker taking it, or its request giving up).
struct Job {
    queued: Arc<AtomicBool>,
    run: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Jobs queued whose requests still wait for them.
    waiting: usize,
    /// Workers with nothing to do.
    idle: usize,
    /// Set when the pool is dropped: the workers end.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

impl Shared {
    /// The state, also after a panic elsewhere while it was held (its counts stay consistent:
    /// every change to them is a single statement).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine's worker threads, one per core, and their queue.
pub(crate) struct EnginePool {
    shared: Arc<Shared>,
}

impl EnginePool {
    /// Starts `workers` threads (at least one).
    pub(crate) fn new(workers: usize) -> Result<EnginePool, CoreError> {
        let shared = Arc::new(Shared::default());
        for i in 0..workers.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("consentry-engine-{i}"))
                .spawn(move || work(&shared))
                .map_err(|e| CoreError::Internal(format!("engine thread: {e}")))?;
        }
        Ok(EnginePool { shared })
    }

    /// Whether a job would be taken now: a worker idle, or room in the queue.
    pub(crate) fn has_room(&self, queue: EngineQueue) -> bool {
        let s = self.shared.lock();
        s.waiting < s.idle + queue.max_waiting
    }

    /// Runs `work` on a worker: at once when one is idle, else after a bounded wait in a
    /// bounded queue (first come, first served). A job that finds the queue full, or has not
    /// started within `queue.max_wait`, is refused with `overloaded` before any of it is done.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        queue: EngineQueue,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        let queued = Arc::new(AtomicBool::new(true));
        {
            let mut s = self.shared.lock();
            if s.waiting >= s.idle + queue.max_waiting {
                return Err(CoreError::Overloaded);
            }
            s.waiting += 1;
            s.jobs.push_back(Job {
                queued: queued.clone(),
                run: Box::new(move || {
                    // The request may be gone by the end: the result is then dropped.
                    let _ = done_tx.send(work());
                }),
            });
        }
        self.shared.work.notify_one();
        // Uncounts the job if its request gives up while it waits (on timeout, or when this
        // future is dropped); a worker then skips it.
        let waits = Waits {
            shared: &self.shared,
            queued,
        };
        let finished = match tokio::time::timeout(queue.max_wait, &mut done_rx).await {
            Ok(finished) => finished,
            Err(_) if waits.give_up() => return Err(CoreError::Overloaded),
            // Taken by a worker in time: its result is worth the wait.
            Err(_) => done_rx.await,
        };
        finished.map_err(|_| CoreError::Internal("an engine job failed".into()))
    }
}

impl Drop for EnginePool {
    /// The workers end once the jobs they are running are done; queued jobs are dropped, and
    /// their requests answered with an error.
    fn drop(&mut self) {
        let jobs = {
            let mut s = self.shared.lock();
            s.closed = true;
            std::mem::take(&mut s.jobs)
        };
        drop(jobs);
        self.shared.work.notify_all();
    }
}

/// A queued job's hold on its place, released once: by [`Waits::give_up`] or on drop.
struct Waits<'a> {
    shared: &'a Shared,
    queued: Arc<AtomicBool>,
}

impl Waits<'_> {
    /// Takes the job out of the count unless a worker took it first; true if it did.
    fn give_up(&self) -> bool {
        if self.queued.swap(false, Ordering::SeqCst) {
            let mut s = self.shared.lock();
            s.waiting -= 1;
            true
        } else {
            false
        }
    }
}

impl Drop for Waits<'_> {
    fn drop(&mut self) {
        self.give_up();
    }
}

/// A worker: takes the oldest job still wanted, runs it, and so on until the pool closes.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut s = shared.lock();
            loop {
                if s.closed {
                    return;
                }
                match s.jobs.pop_front() {
                    Some(job) if job.queued.swap(false, Ordering::SeqCst) => {
                        s.waiting -= 1;
                        break job;
                    }
                    // Its request gave up: dropped unrun.
                    Some(_) => continue,
                    None => {
                        s.idle += 1;
                        s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
                        s.idle -= 1;
                    }
                }
            }
        };
        // A panicking job fails its own request (its result sender is dropped), not the worker.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.run));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    use super::EnginePool;
    use crate::{CoreError, EngineQueue};

    /// A gate the jobs block on until it opens; it opens on every way out of a test, so a
    /// failing assertion cannot leave workers blocked. (Also used by `core`'s tests.)
    pub(crate) struct Gate(Mutex<bool>, Condvar);
    pub(crate) struct Opens(pub(crate) Arc<Gate>);

    impl Gate {
        pub(crate) fn new() -> Arc<Gate> {
            Arc::new(Gate(Mutex::new(false), Condvar::new()))
        }
    }
    impl Drop for Opens {
        fn drop(&mut self) {
            *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.0 .1.notify_all();
        }
    }
    pub(crate) fn wait_for(gate: &Gate) {
        let mut open = gate.0.lock().unwrap();
        while !*open {
            open = gate.1.wait(open).unwrap();
        }
    }

    /// Polls `done` until it holds; fails after 30 s.
    pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A job that blocks its worker until `gate` opens, then answers `value`; returned once
    /// it has started.
    async fn blocked_job(
        pool: &Arc<EnginePool>,
        gate: &Arc<Gate>,
        queue: EngineQueue,
        value: u8,
    ) -> tokio::task::JoinHandle<Result<u8, CoreError>> {
        let started = Arc::new(AtomicUsize::new(0));
        let job = {
            let (pool, gate, started) = (pool.clone(), gate.clone(), started.clone());
            tokio::spawn(async move {
                pool.run(queue, move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    wait_for(&gate);
                    value
                })
                .await
            })
        };
        until("the blocking job started", || {
            started.load(Ordering::SeqCst) == 1
        })
        .await;
        job
    }

    const QUEUE: EngineQueue = EngineQueue {
        max_waiting: 2,
        max_wait: Duration::from_secs(30),
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded_first_come_first_served_and_skips_cancelled_jobs() {
        let pool = Arc::new(EnginePool::new(1).unwrap());
        let gate = Gate::new();
        let opens = Opens(gate.clone());
        let order = Arc::new(Mutex::new(Vec::new()));
        // The one worker blocks in its first job.
        let first = blocked_job(&pool, &gate, QUEUE, 0).await;
        // Two wait (the queue's bound), a third is refused at once.
        let queued: Vec<_> = (1..=2)
            .map(|n| {
                let (pool, order) = (pool.clone(), order.clone());
                tokio::spawn(async move {
                    pool.run(QUEUE, move || {
                        order.lock().unwrap().push(n);
                        n
                    })
                    .await
                })
            })
            .collect();
        until("two jobs queued", || !pool.has_room(QUEUE)).await;
        let refused = pool.run(QUEUE, || 9).await;
        assert!(matches!(refused, Err(CoreError::Overloaded)), "{refused:?}");
        // A waiting request that is cancelled frees its place and its job never runs.
        let mut queued = queued.into_iter();
        let cancelled = queued.next().unwrap();
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert!(pool.has_room(QUEUE));
        let (pool3, order3) = (pool.clone(), order.clone());
        let third = tokio::spawn(async move {
            pool3
                .run(QUEUE, move || {
                    order3.lock().unwrap().push(3);
                    3
                })
                .await
        });
        until("the third job queued", || !pool.has_room(QUEUE)).await;
        drop(opens);
        assert_eq!(first.await.unwrap().unwrap(), 0);
        assert_eq!(queued.next().unwrap().await.unwrap().unwrap(), 2);
        assert_eq!(third.await.unwrap().unwrap(), 3);
        assert_eq!(*order.lock().unwrap(), vec![2, 3], "job 1 was cancelled");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_not_started_in_time_is_refused_and_a_started_one_is_awaited() {
        let pool = Arc::new(EnginePool::new(1).unwrap());
        let gate = Gate::new();
        let opens = Opens(gate.clone());
        let quick = EngineQueue {
            max_waiting: 4,
            max_wait: Duration::from_millis(50),
        };
        let first = blocked_job(&pool, &gate, quick, 1).await;
        // Waits 50 ms for the busy worker, then is refused; its work never runs.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let late = pool
            .run(quick, move || r.fetch_add(1, Ordering::SeqCst))
            .await;
        assert!(matches!(late, Err(CoreError::Overloaded)), "{late:?}");
        // The first job outlives its own 50 ms: it had started, so its result is awaited.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(opens);
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(pool.run(quick, || 2).await.unwrap(), 2);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the refused job ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_fails_its_request_and_the_worker_goes_on() {
        let pool = EnginePool::new(1).unwrap();
        let failed = pool.run(QUEUE, || -> u8 { panic!("a job's bug") }).await;
        assert!(matches!(failed, Err(CoreError::Internal(_))), "{failed:?}");
        assert_eq!(pool.run(QUEUE, || 5).await.unwrap(), 5);
    }
}
