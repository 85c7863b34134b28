//! Process settings every socket-heavy Dovie binary (the node, the bare relay, the load tool)
//! makes at start-up, so that each runs under the same conditions.

/// Raises the open-file limit (one descriptor per socket) to the hard limit this process is
/// allowed; answers the new limit.
pub fn raise_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Turns transparent huge pages off for this process. The allocator hands freed memory back to
/// the kernel and faults it in again as room windows and socket queues grow and shrink; with THP
/// set to `always`, each such fault zeroed a whole 2 MiB page — a fifth of the node's actor
/// threads' time in the durable-send profile. Small pages keep faults proportional to use.
pub fn no_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets a flag on this
    // process; it reads or writes none of our memory.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (Linux keeps a nice value per
/// thread): background work on that thread — the push pipeline — takes the CPU the
/// request-serving threads leave, instead of competing with them.
pub fn lower_this_thread(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid takes no arguments; setpriority takes plain integers (PRIO_PROCESS with a
    // thread id addresses that thread) and touches none of our memory.
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_lowers_only_itself() {
        let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let lowered = std::thread::spawn(|| {
            super::lower_this_thread(10).unwrap();
            // SAFETY: plain integer arguments.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 10.max(before));
        // SAFETY: plain integer arguments.
        let after = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert_eq!(after, before, "the calling thread keeps its priority");
    }

    #[test]
    fn huge_pages_are_off_after_the_call() {
        super::no_transparent_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no pointer; it answers the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
