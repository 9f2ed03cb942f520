//! Ordered parallel execution with bounded memory.
//!
//! Items are processed on worker threads and handed to a sink on the calling
//! thread in input order, so outputs are byte-identical whatever the thread
//! count. At most `window` items are between "taken by a worker" and "sunk",
//! which bounds memory even when one item is slow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

struct Permits {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Permits {
    fn acquire(&self, stop: &AtomicBool) -> bool {
        let mut n = self.free.lock().unwrap();
        while *n == 0 {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            n = self.cv.wait(n).unwrap();
        }
        *n -= 1;
        true
    }

    fn release(&self) {
        *self.free.lock().unwrap() += 1;
        self.cv.notify_one();
    }

    fn wake_all(&self) {
        let _guard = self.free.lock().unwrap();
        self.cv.notify_all();
    }
}

/// Runs `work` over `items` on `threads` worker threads; `sink` receives the
/// results in input order on the calling thread. `init` makes per-thread
/// state (codec handles, buffers). The first error from `sink` stops the run.
pub fn ordered_map<T, R, S, E>(
    items: impl Iterator<Item = T> + Send,
    threads: usize,
    window: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, T) -> R + Sync,
    mut sink: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    R: Send,
{
    let threads = threads.max(1);
    let window = window.max(threads);
    let input = Mutex::new(items.enumerate());
    let permits = Permits {
        free: Mutex::new(window),
        cv: Condvar::new(),
    };
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (input, permits, stop, init, work) = (&input, &permits, &stop, &init, &work);
            scope.spawn(move || {
                let mut state = init();
                loop {
                    if !permits.acquire(stop) {
                        return;
                    }
                    let next = input.lock().unwrap().next();
                    let Some((i, item)) = next else {
                        permits.release();
                        return;
                    };
                    if tx.send((i, work(&mut state, item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut next = 0usize;
        let mut result = Ok(());
        for (i, r) in rx.iter() {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&next) {
                next += 1;
                if result.is_ok() {
                    result = sink(r);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                        permits.wake_all();
                    }
                }
                permits.release();
            }
            if result.is_err() {
                break;
            }
        }
        result
    })
}

/// [`ordered_map`] over batches of `batch` items: one hand-off between
/// threads per batch instead of per item, for items that take microseconds
/// (small images). Same order, same results.
pub fn ordered_map_batched<T, R, S, E>(
    items: impl Iterator<Item = T> + Send,
    batch: usize,
    threads: usize,
    window: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, T) -> R + Sync,
    mut sink: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    R: Send,
{
    let batch = batch.max(1);
    let mut items = items;
    let batches = std::iter::from_fn(move || {
        let v: Vec<T> = items.by_ref().take(batch).collect();
        (!v.is_empty()).then_some(v)
    });
    ordered_map(
        batches,
        threads,
        window.div_ceil(batch),
        init,
        |s, b: Vec<T>| b.into_iter().map(|t| work(s, t)).collect::<Vec<R>>(),
        |rs| rs.into_iter().try_for_each(&mut sink),
    )
}

/// Below this many items, cheap per-item work (a `statx`, a digest) is not
/// worth starting threads for.
pub const FEW_ITEMS: usize = 2048;

/// Runs `work` over `inputs` and their places in `out` (as long), in one
/// part per thread on `threads` threads (inline for fewer than 2): for
/// uniform, cheap per-item work whose results are written in place, with no
/// hand-off per item.
pub fn in_parts<T: Sync, R: Send>(
    inputs: &[T],
    out: &mut [R],
    threads: usize,
    work: impl Fn(&[T], &mut [R]) + Sync,
) {
    assert_eq!(inputs.len(), out.len(), "one place per input");
    if threads < 2 || inputs.len() < 2 {
        return work(inputs, out);
    }
    let per = inputs.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        for (inputs, out) in inputs.chunks(per).zip(out.chunks_mut(per)) {
            scope.spawn(move || work(inputs, out));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fill_every_place_whatever_the_thread_count() {
        let inputs: Vec<u64> = (0..1001).collect();
        for threads in [0, 1, 2, 3, 8, 2000] {
            let mut out = vec![0u64; inputs.len()];
            in_parts(&inputs, &mut out, threads, |i, o| {
                for (i, o) in i.iter().zip(o) {
                    *o = i * 3;
                }
            });
            assert_eq!(out, inputs.iter().map(|i| i * 3).collect::<Vec<_>>());
        }
    }

    #[test]
    fn results_arrive_in_order_whatever_the_timing() {
        for threads in [1, 2, 4, 8] {
            let mut got = Vec::new();
            ordered_map(
                0..200u64,
                threads,
                16,
                || (),
                |_, i| {
                    // uneven work so completions come out of order
                    std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 300));
                    i * 2
                },
                |r| {
                    got.push(r);
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            assert_eq!(got, (0..200).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn batches_keep_order_and_stop_on_error() {
        for threads in [1, 2, 3] {
            let mut got = Vec::new();
            ordered_map_batched(
                0..200u64,
                7,
                threads,
                32,
                || (),
                |_, i| {
                    std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 200));
                    i + 1
                },
                |r| {
                    got.push(r);
                    if r == 150 {
                        Err(r)
                    } else {
                        Ok(())
                    }
                },
            )
            .unwrap_err();
            assert_eq!(got, (1..=150).collect::<Vec<_>>());
        }
    }

    #[test]
    fn window_bounds_items_in_flight() {
        use std::sync::atomic::AtomicUsize;
        let in_flight = AtomicUsize::new(0);
        let max_seen = AtomicUsize::new(0);
        ordered_map(
            0..100u64,
            4,
            6,
            || (),
            |_, i| {
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(n, Ordering::SeqCst);
                if i == 3 {
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
                i
            },
            |_| {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert!(max_seen.load(Ordering::SeqCst) <= 6);
    }

    #[test]
    fn sink_error_stops_the_run() {
        let mut seen = 0;
        let err = ordered_map(
            0..10_000u64,
            2,
            8,
            || (),
            |_, i| i,
            |i| {
                seen += 1;
                if i == 10 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(err, Err("stop"));
        assert_eq!(seen, 11);
    }
}
