//! pseries: the console is the PAPR virtual terminal (`H_PUT_TERM_CHAR`,
//! [`crate::console::put_term_chars`]); the end of the run and processor
//! start are RTAS calls ([`crate::rtas`]).

use super::ConsoleError;

/// Writes `bytes` to the vty.
pub fn console_write(bytes: &[u8]) -> Result<(), ConsoleError> {
    crate::console::put_term_chars(crate::console::termno(), bytes).map_err(|_| ConsoleError)
}
