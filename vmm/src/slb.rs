//! TODO(slb): being written.
