//! Keeping the agent's resident memory close to what is live: fewer malloc arenas,
//! and freed heap handed back to the kernel after the agent's large transients.
//!
//! glibc keeps what `free` returns inside its arenas and gives pages back only from
//! the top of the main heap. The agent's transients (the first round's hundreds of
//! concurrent handshakes, a reload's second parse of the matrix, the snapshots behind
//! `/api/v1/edges` and the status page) leave megabytes of free pages in the middle of
//! the heap, resident but unused, and the next transient then lands on top of them.
//! `malloc_trim` returns those pages (`MADV_DONTNEED`), so the resident set follows
//! what is live and a reload's peak starts from there, not from the last peak.

/// Caps glibc's malloc arenas at `n` (the runtime's worker threads), unless
/// `MALLOC_ARENA_MAX` is set. glibc's default is eight per core, and it gives each new
/// thread that meets contention an arena of its own: the blocking pool's threads (a
/// reload's parse, the API's and the status page's rendering) then each keep a few
/// MiB of pages that the workers' arena cannot reuse. At 10,000 edges on one core a
/// reload of every target added 9.1 MiB to the peak with per-thread arenas and
/// 7.0 MiB with one (docs/performance.md). A no-op where the C library is not glibc.
pub fn limit_arenas(n: usize) {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let n = libc::c_int::try_from(n.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` takes two integers and no pointers; it only sets a limit
        // read under glibc's arena list lock. Called once at start.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, n);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = n;
}

/// Returns the free pages of every malloc arena to the kernel. It walks the free lists
/// under each arena's lock, in time proportional to the heap, so the agent calls it
/// on the blocking pool, after a transient, not on a timer.
/// A no-op where the C library is not glibc.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers and only walks glibc's own arenas under
    // their locks; it is documented as safe to call from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`release_freed`] on the blocking pool, from the runtime.
pub fn release_freed_later() {
    drop(tokio::task::spawn_blocking(release_freed));
}
