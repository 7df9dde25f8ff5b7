//! L2 mode.
