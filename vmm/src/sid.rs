//! TODO(sid): being written.
