//! Whether this speaker can do its job, and so whether it should say it is ready: its L2 runtime
//! (packet sockets), its BGP runtime (session tasks, BFD sockets) and its view of the API server.
//! Pure: the main loop feeds it what it sees and acts on the answers (readiness, metric, one log
//! line per change, leaving the membership while L2 cannot work).

/// One of the speaker's runtimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runtime {
    L2,
    Bgp,
}

impl Runtime {
    /// The `runtime` label of `ferrolb_speaker_runtime_up`.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::L2 => "l2",
            Runtime::Bgp => "bgp",
        }
    }
}

/// What changed when a runtime's state was set: the caller logs only changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// It works again.
    Up,
    /// It stopped working, or now fails for another reason.
    Down(String),
}

/// The health of the speaker's runtimes. `None` = working; `Some(cause)` = cannot work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    l2: Option<String>,
    bgp: Option<String>,
    /// False while the API server does not answer (the plan would be stale).
    api_unreachable: bool,
}

impl Health {
    /// Records whether `rt` works; returns what changed.
    pub fn set(&mut self, rt: Runtime, state: Result<(), String>) -> Change {
        let slot = match rt {
            Runtime::L2 => &mut self.l2,
            Runtime::Bgp => &mut self.bgp,
        };
        let new = state.err();
        if *slot == new {
            return Change::None;
        }
        *slot = new.clone();
        match new {
            None => Change::Up,
            Some(cause) => Change::Down(cause),
        }
    }

    pub fn set_api_reachable(&mut self, reachable: bool) {
        self.api_unreachable = !reachable;
    }

    pub fn up(&self, rt: Runtime) -> bool {
        match rt {
            Runtime::L2 => self.l2.is_none(),
            Runtime::Bgp => self.bgp.is_none(),
        }
    }

    /// `/readyz`: every runtime works and the API server answers.
    pub fn ready(&self) -> bool {
        self.l2.is_none() && self.bgp.is_none() && !self.api_unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_runtime_and_the_api() {
        let mut h = Health::default();
        assert!(h.ready());
        assert_eq!(
            h.set(Runtime::L2, Err("no CAP_NET_RAW".into())),
            Change::Down("no CAP_NET_RAW".into())
        );
        assert!(!h.ready() && !h.up(Runtime::L2) && h.up(Runtime::Bgp));
        // The same cause again is not a change (logged once).
        assert_eq!(
            h.set(Runtime::L2, Err("no CAP_NET_RAW".into())),
            Change::None
        );
        assert_eq!(
            h.set(Runtime::L2, Err("task panicked".into())),
            Change::Down("task panicked".into())
        );
        assert_eq!(h.set(Runtime::L2, Ok(())), Change::Up);
        assert_eq!(h.set(Runtime::L2, Ok(())), Change::None);
        assert!(h.ready());
        h.set(Runtime::Bgp, Err("session task ended".into()));
        assert!(!h.ready());
        h.set(Runtime::Bgp, Ok(()));
        h.set_api_reachable(false);
        assert!(!h.ready());
        h.set_api_reachable(true);
        assert!(h.ready());
    }
}
