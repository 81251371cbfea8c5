//! TODO(structures): being written.
