//! TODO(registers): being written.
