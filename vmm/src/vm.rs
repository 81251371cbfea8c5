//! TODO(vm): being written.
