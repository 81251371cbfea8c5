//! TODO(instructions): being written.
