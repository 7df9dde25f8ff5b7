//! What the decision loop hears about, and how what is queued is taken as one batch.

use std::collections::BTreeSet;

use tokio::sync::mpsc;

use crate::writer::Outcome;

/// Most Services taken in one batch, so that leadership changes are still looked at in a
/// flood of Service events.
const MAX_BATCH_SERVICES: usize = 4096;

/// What the decision loop hears about.
pub(crate) enum Msg {
    Service(String),
    Namespaces,
    Config,
    /// A Service write ended: key, how, and the resourceVersion it was conditional on.
    Written(String, Outcome, Option<String>),
    /// A watch listed afresh (after an outage): deletions may have been missed.
    Relisted,
    /// Time to forget conflicts not reported for long enough.
    ExpireConflicts,
}

/// Messages taken together: one configuration pass serves many changes.
#[derive(Default)]
pub(crate) struct Batch {
    pub services: BTreeSet<String>,
    pub config: bool,
    pub everything: bool,
    pub written: Vec<(String, Outcome, Option<String>)>,
    pub expire_conflicts: bool,
}

impl Batch {
    /// `first` and whatever else is queued behind it.
    pub fn take(first: Msg, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Batch {
        let mut batch = Batch::default();
        batch.add(first);
        while let Ok(m) = rx.try_recv() {
            batch.add(m);
            if batch.services.len() > MAX_BATCH_SERVICES {
                break;
            }
        }
        batch
    }

    fn add(&mut self, m: Msg) {
        match m {
            Msg::Service(k) => {
                self.services.insert(k);
            }
            Msg::Config => self.config = true,
            Msg::Namespaces | Msg::Relisted => self.everything = true,
            Msg::Written(k, o, rv) => self.written.push((k, o, rv)),
            Msg::ExpireConflicts => self.expire_conflicts = true,
        }
    }
}
