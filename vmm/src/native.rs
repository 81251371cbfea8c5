//! TODO(native): being written.
