//! TODO(addr): being written.
