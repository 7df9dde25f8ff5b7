//! Real backends for the e2e tests (filled in by the e2e work).
