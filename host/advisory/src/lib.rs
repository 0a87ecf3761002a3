//! Advisories: what is known to be vulnerable, how badly, and by when it must be fixed.
