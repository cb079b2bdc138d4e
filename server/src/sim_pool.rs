//! A fixed pool of simulation threads (about one per core) that runs every room of the process.
//!
//! A room is a [`Scheduled`] task: the pool runs it when its next tick is due, and the task says
//! when it wants to run next. Tasks wait in one queue ordered by that time (earliest deadline
//! first), so a thousand rooms cost a thousand queue entries, not a thousand threads. A task is
//! only ever run by one thread at a time; it never blocks (rooms exchange data with sessions
//! through bounded channels and outboxes).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Work the pool runs over and over, each time it is due.
pub trait Scheduled: Send {
    /// Runs whatever is due at `now` and returns when the task next wants to run, or `None`
    /// when it is finished (it is then dropped).
    fn run_due(&mut self, now: Instant) -> Option<Instant>;
}

struct Job {
    due: Instant,
    /// Submission order, so that tasks due at the same instant take turns.
    seq: u64,
    task: Box<dyn Scheduled>,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Job {}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Job {
    /// Reversed: the earliest deadline is the greatest, on top of the max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[derive(Default)]
struct Queue {
    jobs: BinaryHeap<Job>,
    /// Tasks being run right now (out of the heap).
    running: usize,
    next_seq: u64,
    stopping: bool,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool stops.
    work: Condvar,
    /// Signalled when a task finishes.
    finished: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, queue: &mut Queue, due: Instant, task: Box<dyn Scheduled>) {
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.jobs.push(Job { due, seq, task });
        self.work.notify_one();
    }
}

/// The simulation threads and the tasks they run.
pub struct SimPool {
    inner: Arc<Inner>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl SimPool {
    /// Starts `threads` simulation threads (at least one).
    ///
    /// # Errors
    ///
    /// When a thread cannot be started.
    pub fn new(threads: usize) -> std::io::Result<SimPool> {
        let inner = Arc::new(Inner::default());
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sim-{i}"))
                .spawn(move || worker(&inner))?;
            handles.push(handle);
        }
        Ok(SimPool { inner, threads: Mutex::new(handles) })
    }

    /// The number of simulation threads.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Queues a task, due at once.
    pub fn submit(&self, task: Box<dyn Scheduled>) {
        let mut queue = self.inner.lock();
        self.inner.push(&mut queue, Instant::now(), task);
    }

    /// Tasks queued or running.
    #[must_use]
    pub fn tasks(&self) -> usize {
        let queue = self.inner.lock();
        queue.jobs.len() + queue.running
    }

    /// Waits until every task has finished, at most `timeout`; returns whether they did.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.inner.lock();
        while !queue.jobs.is_empty() || queue.running > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            queue = self
                .inner
                .finished
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Stops the threads once their current task is done; queued tasks are dropped with the
    /// pool.
    pub fn stop(&self) {
        self.inner.lock().stopping = true;
        self.inner.work.notify_all();
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for SimPool {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(inner: &Inner) {
    let mut queue = inner.lock();
    loop {
        if queue.stopping {
            return;
        }
        let now = Instant::now();
        let due = match queue.jobs.peek() {
            None => {
                queue = inner.work.wait(queue).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            Some(job) => job.due,
        };
        if due > now {
            queue =
                inner.work.wait_timeout(queue, due - now).unwrap_or_else(PoisonError::into_inner).0;
            continue;
        }
        let Some(mut job) = queue.jobs.pop() else { continue };
        queue.running += 1;
        drop(queue);
        // A task that panics is dropped (a room closes its sessions when dropped); the thread
        // lives on for the others.
        let next = catch_unwind(AssertUnwindSafe(|| job.task.run_due(Instant::now())));
        let next = next.unwrap_or_else(|_| {
            tracing::error!("a simulation task panicked; it is stopped");
            None
        });
        let finished = match next {
            Some(due) => {
                let mut queue = inner.lock();
                inner.push(&mut queue, due, job.task);
                drop(queue);
                None
            }
            None => Some(job.task),
        };
        // Dropped outside the lock: a room's drop takes locks of its own.
        drop(finished);
        queue = inner.lock();
        queue.running -= 1;
        inner.finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

    /// Runs `left` more times, every `period`, counting its runs and the threads that ran it.
    struct Counter {
        left: u32,
        period: Duration,
        runs: Arc<AtomicU32>,
        threads: Arc<Mutex<std::collections::BTreeSet<String>>>,
    }

    impl Scheduled for Counter {
        fn run_due(&mut self, now: Instant) -> Option<Instant> {
            self.runs.fetch_add(1, AtomicOrdering::Relaxed);
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.threads.lock().unwrap().insert(name);
            self.left = self.left.checked_sub(1)?;
            Some(now + self.period)
        }
    }

    #[test]
    fn many_tasks_share_a_few_threads_until_they_finish() {
        let pool = SimPool::new(2).unwrap();
        let runs = Arc::new(AtomicU32::new(0));
        let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        for _ in 0..50 {
            pool.submit(Box::new(Counter {
                left: 9,
                period: Duration::from_millis(2),
                runs: runs.clone(),
                threads: threads.clone(),
            }));
        }
        assert!(pool.wait_finished(Duration::from_secs(10)), "{} tasks left", pool.tasks());
        assert_eq!(runs.load(AtomicOrdering::Relaxed), 50 * 10);
        let names = threads.lock().unwrap().clone();
        assert!(names.iter().all(|n| n.starts_with("sim-")) && names.len() <= 2, "{names:?}");
        assert_eq!(pool.tasks(), 0);
    }

    struct Panics;

    impl Scheduled for Panics {
        fn run_due(&mut self, _now: Instant) -> Option<Instant> {
            panic!("a broken room");
        }
    }

    #[test]
    fn a_panicking_task_is_dropped_and_the_threads_go_on() {
        let pool = SimPool::new(1).unwrap();
        pool.submit(Box::new(Panics));
        let runs = Arc::new(AtomicU32::new(0));
        let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let counter = Counter { left: 2, period: Duration::ZERO, runs: runs.clone(), threads };
        pool.submit(Box::new(counter));
        assert!(pool.wait_finished(Duration::from_secs(10)));
        assert_eq!(runs.load(AtomicOrdering::Relaxed), 3);
    }
}
