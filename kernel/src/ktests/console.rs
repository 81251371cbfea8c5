//! The hypervisor console.

use arch_ppc64::instructions::hcall::{hcall, opcode, PaprError};

use crate::console::{put_term_chars, termno};

kernel_test! {
    fn put_term_char_succeeds_on_the_vty() {
        super::pseries_only("pseries only: H_PUT_TERM_CHAR (powernv writes through OPAL)");
        assert_eq!(put_term_chars(termno(), b""), Ok(()));
        // 20 bytes: two hcalls (16 + 4).
        assert_eq!(put_term_chars(termno(), b"(20 bytes, 2 calls) "), Ok(()));
    }

    fn put_term_char_rejects_bad_terminal_and_length() {
        super::pseries_only("pseries only: H_PUT_TERM_CHAR (powernv writes through OPAL)");
        // No vty with this reg: H_PARAMETER (hw/char/spapr_vty.c).
        assert_eq!(put_term_chars(0x7100_00ff, b"x"), Err(PaprError::Parameter));
        // More than 16 bytes in one call: H_PARAMETER.
        // SAFETY: H_PUT_TERM_CHAR reads only its register arguments.
        let r = unsafe { hcall(opcode::H_PUT_TERM_CHAR, &[u64::from(termno()), 17, 0, 0]) };
        assert_eq!(r, Err(PaprError::Parameter));
    }
}
