//! TODO(segment): being written.
