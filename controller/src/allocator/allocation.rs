//! The addresses a Service holds.

use std::net::IpAddr;

/// A Service's addresses, in the order of its `spec.ipFamilies` (primary first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub ips: Vec<IpAddr>,
    /// The pool holding all of them; `None` when they are orphaned: no single pool holds them all
    /// any more (ranges edited or pool deleted). Orphaned addresses are kept, never silently
    /// moved; the controller should surface it.
    pub pool: Option<String>,
}

impl Allocation {
    pub fn is_orphaned(&self) -> bool {
        self.pool.is_none()
    }
}
