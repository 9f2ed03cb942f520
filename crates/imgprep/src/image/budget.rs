//! The decode memory budget: how many bytes of decoded pixels all workers
//! may hold at once. Each image asks for what its decode will take before
//! decoding; a worker waits while others hold the budget, so memory is
//! bounded by the budget (or by the one image being decoded, when it alone
//! is larger), not by threads x the pixel limit. Eight decompression bombs
//! at the pixel limit are decoded one or two at a time, not all at once.

use std::sync::{Condvar, Mutex, OnceLock};

struct Budget {
    limit: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

fn budget() -> &'static Budget {
    static B: OnceLock<Budget> = OnceLock::new();
    B.get_or_init(|| Budget {
        limit: std::env::var("IMGPREP_DECODE_MEMORY_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&m| m > 0)
            .unwrap_or(1024)
            << 20,
        in_use: Mutex::new(0),
        freed: Condvar::new(),
    })
}

/// The budget in bytes (`IMGPREP_DECODE_MEMORY_MIB`, default 1024 MiB).
pub fn limit() -> u64 {
    budget().limit
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Permit(u64);

/// Waits until `bytes` fit in the budget (or nothing else is held) and
/// takes them.
pub fn acquire(bytes: u64) -> Permit {
    let b = budget();
    let mut used = b.in_use.lock().unwrap();
    while *used > 0 && *used + bytes > b.limit {
        used = b.freed.wait(used).unwrap();
    }
    *used += bytes;
    Permit(bytes)
}

impl Drop for Permit {
    fn drop(&mut self) {
        let b = budget();
        *b.in_use.lock().unwrap() -= self.0;
        b.freed.notify_all();
    }
}

/// Bytes held now (for tests).
pub fn in_use() -> u64 {
    *budget().in_use.lock().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_large_share_waits_for_the_first() {
        let limit = budget().limit;
        let first = acquire(limit - 10);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let p = acquire(limit / 2);
            tx.send(()).unwrap();
            drop(p);
        });
        // the second cannot start while the first holds the budget
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        // one share larger than the whole budget still goes, alone
        let big = acquire(limit * 2);
        drop(big);
        assert_eq!(in_use(), 0);
    }
}
