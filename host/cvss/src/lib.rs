//! CVSS base scores (v3.0, v3.1, v4.0), computed exactly by the FIRST specifications.
