//! CVE ids: recognising them, also inside distribution ids such as `UBUNTU-CVE-2024-1234`.

/// `true` for `CVE-YYYY-N…` with a four-digit year and at least four digits after it.
pub(crate) fn is_cve_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The CVE id an advisory id refers to: the id itself (`CVE-2024-1234`), or the CVE inside a
/// distribution's per-CVE id (`UBUNTU-CVE-2024-1234`, `DEBIAN-CVE-2024-1234`). Other ids
/// (`USN-6793-1`, `DSA-5678-1`, `GHSA-…`) name no single CVE.
pub(crate) fn cve_in(id: &str) -> Option<&str> {
    let id = id.trim();
    if is_cve_id(id) {
        return Some(id);
    }
    let at = id.find("-CVE-")?;
    let inner = id.get(at + 1..)?;
    is_cve_id(inner).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_prefixed_cve_ids_are_recognised() {
        assert_eq!(cve_in("CVE-2024-32002"), Some("CVE-2024-32002"));
        assert_eq!(cve_in("UBUNTU-CVE-2024-32002"), Some("CVE-2024-32002"));
        assert_eq!(cve_in("DEBIAN-CVE-2023-44487"), Some("CVE-2023-44487"));
        assert_eq!(cve_in("CVE-2024-123456"), Some("CVE-2024-123456"));
    }

    #[test]
    fn other_ids_name_no_cve() {
        assert_eq!(cve_in("USN-6793-1"), None);
        assert_eq!(cve_in("DSA-5678-1"), None);
        assert_eq!(cve_in("CVE-24-1234"), None);
        assert_eq!(cve_in("CVE-2024-123"), None);
        assert_eq!(cve_in("CVE-2024-12a4"), None);
        assert_eq!(cve_in("UBUNTU-CVE-"), None);
    }
}
