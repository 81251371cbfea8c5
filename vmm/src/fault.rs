//! TODO(fault): being written.
