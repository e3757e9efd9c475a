//! Bounds checked before anything is allocated: a request larger than this machine's
//! memory, or than the thread limit, is an error naming the flag (exit status 2), never
//! an allocation failure (which aborts the process).

use std::fmt::Write as _;

use solver_host::solver_core::Real;

/// The most worker threads `--threads` may ask for.
pub const MAX_THREADS: usize = 1024;

/// Physical memory of this machine in bytes (`MemTotal` of /proc/meminfo), where
/// known; elsewhere the address space is the only bound.
pub fn machine_memory() -> Option<u128> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Checks that `bytes` (`None`: beyond any count) fits in this machine's memory;
/// otherwise an error saying what needs it: `what` names the flags responsible.
pub fn fits(what: &str, bytes: Option<u128>) -> Result<(), String> {
    let limit = machine_memory().unwrap_or(isize::MAX as u128).min(isize::MAX as u128);
    match bytes {
        Some(b) if b <= limit => Ok(()),
        _ => {
            let mut msg = format!("{what}: needs ");
            match bytes {
                Some(b) => {
                    let _ = write!(msg, "{}", human(b));
                }
                None => msg.push_str("more bytes than can be counted"),
            }
            let _ = write!(msg, ", more than this machine's {} of memory", human(limit));
            Err(msg)
        }
    }
}

/// `a·b·…` in bytes of `f32`s, in `u128` (`None` past it).
pub fn floats(factors: &[usize]) -> Option<u128> {
    values::<f32>(factors)
}

/// `a·b·…` in bytes of values of `T`, in `u128` (`None` past it).
pub fn values<T: Real>(factors: &[usize]) -> Option<u128> {
    factors.iter().try_fold(T::BYTES as u128, |acc, &f| acc.checked_mul(f as u128))
}

fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{v:.1} {}", UNITS[unit]) }
}
