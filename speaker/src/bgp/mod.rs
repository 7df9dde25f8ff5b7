//! BGP mode.
