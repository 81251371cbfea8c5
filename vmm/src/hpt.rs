//! TODO(hpt): being written.
