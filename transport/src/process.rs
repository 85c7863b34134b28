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

#[cfg(test)]
mod tests {
    #[test]
    fn huge_pages_are_off_after_the_call() {
        super::no_transparent_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no pointer; it answers the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
