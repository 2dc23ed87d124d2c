//! Doing independent pieces of work on several threads while handing the
//! results on in order: the segments of an image are compressed (or
//! decompressed) in parallel and written one after another.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;

/// How many threads to use: one per CPU the process may run on.
pub fn workers() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The bytes that the segments in progress may take, roughly: with at
/// most four segments per worker in flight, each with its input and its
/// output (and an LZMA encoder about ten times its size), this caps the
/// workers for large segments.
pub const MEMORY_BUDGET: u64 = 32 << 20;

/// `workers`, fewer for segments of `segment_size` bytes if they would
/// take more than [`MEMORY_BUDGET`]; at least 1.
pub fn capped(workers: usize, segment_size: u32) -> usize {
    let fit = MEMORY_BUDGET / u64::from(segment_size.max(1));
    workers
        .min(usize::try_from(fit).unwrap_or(usize::MAX))
        .max(1)
}

/// Run `work(i)` for i in 0..count on `workers` threads, and `sink(i,
/// result)` on this thread in order of i. At most `workers * 4` results
/// are in progress or waiting at once, so memory stays bounded. The first
/// error, of `work` or of `sink`, stops everything and is returned.
pub fn ordered<T, E, W, S>(count: u64, workers: usize, work: W, mut sink: S) -> Result<(), E>
where
    T: Send,
    E: Send,
    W: Fn(u64) -> Result<T, E> + Sync,
    S: FnMut(u64, T) -> Result<(), E>,
{
    let workers = workers.max(1);
    let window = (workers * 4) as u64;
    let (job_tx, job_rx) = mpsc::channel::<u64>();
    let job_rx = Mutex::new(job_rx);
    thread::scope(|scope| {
        // Owned by this closure, so that any return drops it and the
        // workers waiting for a job stop before the scope joins them.
        let job_tx = job_tx;
        let (done_tx, done_rx) = mpsc::channel::<(u64, Result<T, E>)>();
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (job_rx, work) = (&job_rx, &work);
            scope.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(i) = job else { return };
                    if done_tx.send((i, work(i))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut next_job = 0;
        while next_job < count.min(window) {
            // The workers hold the receiver until job_tx is dropped.
            let _ = job_tx.send(next_job);
            next_job += 1;
        }
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        while next < count {
            // Every job sent gets an answer unless a worker panicked,
            // which the scope then reports.
            let Ok((i, result)) = done_rx.recv() else {
                break;
            };
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&next) {
                sink(next, result?)?;
                next += 1;
                if next_job < count {
                    let _ = job_tx.send(next_job);
                    next_job += 1;
                }
            }
        }
        // Dropping job_tx here (also on an early return) lets the
        // workers finish.
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order() {
        for workers in [1, 2, 7] {
            let mut seen = Vec::new();
            let r: Result<(), ()> = ordered(
                100,
                workers,
                |i| {
                    // Later ones finish first.
                    std::thread::sleep(std::time::Duration::from_micros((100 - i) * 20));
                    Ok(i * 2)
                },
                |i, v| {
                    assert_eq!(v, i * 2);
                    seen.push(i);
                    Ok(())
                },
            );
            assert_eq!(r, Ok(()));
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
        }
    }

    #[test]
    fn workers_are_capped_for_large_segments() {
        assert_eq!(capped(2, 131072), 2);
        assert_eq!(capped(64, 131072), 64);
        assert_eq!(capped(64, 8 << 20), 4);
        assert_eq!(capped(2, 8 << 20), 2);
        assert_eq!(capped(0, 512), 1);
        assert_eq!(capped(1000, 64 << 20), 1);
    }

    #[test]
    fn the_first_error_stops_it() {
        let mut seen = Vec::new();
        let r = ordered(
            1000,
            3,
            |i| {
                if i == 10 {
                    Err(format!("bad {i}"))
                } else {
                    Ok(i)
                }
            },
            |i, _| {
                seen.push(i);
                Ok(())
            },
        );
        assert_eq!(r, Err("bad 10".to_string()));
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let r: Result<(), String> =
            ordered(
                50,
                2,
                Ok,
                |i, _| {
                    if i == 5 { Err("sink".into()) } else { Ok(()) }
                },
            );
        assert_eq!(r, Err("sink".into()));
        let r: Result<(), String> = ordered(0, 2, Ok, |_, _| Ok(()));
        assert_eq!(r, Ok(()));
    }
}
