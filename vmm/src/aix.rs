//! TODO(aix): being written.
