//! Pure IP allocator (no I/O).
