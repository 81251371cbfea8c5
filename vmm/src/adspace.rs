//! TODO(adspace): being written.
