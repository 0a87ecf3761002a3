//! CVSS v3.0 and v3.1 base scores, computed exactly.
//!
//! Both versions share the metrics and the base equations (section 7.1 of the v3.1
//! specification, section 8.1 of v3.0); they differ in Roundup. Every weight is a decimal with
//! two places, so the exact value of a base score before rounding is a whole number of 10^-94
//! (see [`PLACES`]). It is computed as such with [`Decimal`]; no floating point is involved,
//! so Roundup sees the value the equations define rather than a binary approximation of it.

use crate::decimal::Decimal;
use crate::grammar::{metric, Grammar};
use crate::Score;

/// Attack Vector values, and their weights in hundredths (v3.1 Table 16).
const AV: [&str; 4] = ["N", "A", "L", "P"];
const AV_WEIGHT: [u64; 4] = [85, 62, 55, 20];
/// Attack Complexity values and weights.
const AC: [&str; 2] = ["L", "H"];
const AC_WEIGHT: [u64; 2] = [77, 44];
/// Privileges Required values; the weights depend on Scope.
const PR: [&str; 3] = ["N", "L", "H"];
const PR_WEIGHT_SCOPE_UNCHANGED: [u64; 3] = [85, 62, 27];
const PR_WEIGHT_SCOPE_CHANGED: [u64; 3] = [85, 68, 50];
/// User Interaction values and weights.
const UI: [&str; 2] = ["N", "R"];
const UI_WEIGHT: [u64; 2] = [85, 62];
/// Scope values: Unchanged, Changed.
const S: [&str; 2] = ["U", "C"];
/// Confidentiality, Integrity and Availability values and weights.
const CIA: [&str; 3] = ["H", "L", "N"];
const CIA_WEIGHT: [u64; 3] = [56, 22, 0];

/// The v3.0 and v3.1 vector tables (Table 15 in both specifications); metrics may come in any order.
pub(crate) static GRAMMAR: Grammar<8> = Grammar {
    base: [
        metric("AV", &AV),
        metric("AC", &AC),
        metric("PR", &PR),
        metric("UI", &UI),
        metric("S", &S),
        metric("C", &CIA),
        metric("I", &CIA),
        metric("A", &CIA),
    ],
    optional: &[
        metric("E", &["X", "H", "F", "P", "U"]),
        metric("RL", &["X", "U", "W", "T", "O"]),
        metric("RC", &["X", "C", "R", "U"]),
        metric("CR", &["X", "H", "M", "L"]),
        metric("IR", &["X", "H", "M", "L"]),
        metric("AR", &["X", "H", "M", "L"]),
        metric("MAV", &["X", "N", "A", "L", "P"]),
        metric("MAC", &["X", "L", "H"]),
        metric("MPR", &["X", "N", "L", "H"]),
        metric("MUI", &["X", "N", "R"]),
        metric("MS", &["X", "U", "C"]),
        metric("MC", &["X", "N", "L", "H"]),
        metric("MI", &["X", "N", "L", "H"]),
        metric("MA", &["X", "N", "L", "H"]),
    ],
    fixed_order: false,
};

/// Decimal places of the exact value before Roundup: 1.08 × 3.25 × (ISS − 0.02)^15 has
/// 2 + 2 + 6 × 15 of them, and no other term has more.
const PLACES: usize = 94;

/// The Roundup function of a minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roundup {
    /// v3.0 section 8: the smallest number with one decimal place that is equal to or higher than the input.
    V3_0,
    /// v3.1 Appendix A: round the input to an integer of 1/100000 first, then round up with integers only.
    V3_1,
}

impl Roundup {
    /// Rounds `Minimum(value, 10)`, where `value` is in units of 10^-[`PLACES`].
    fn apply(self, value: &Decimal) -> Score {
        // Ten is 10^(PLACES + 1) units: anything with a digit at or above that place is at least 10.
        if value.above(PLACES + 1) > 0 {
            return Score::MAX;
        }
        let tenths = match self {
            Roundup::V3_0 => value.above(PLACES - 1) + u64::from(value.any_below(PLACES - 1)),
            Roundup::V3_1 => {
                // int_input = round_to_int(input × 100000), halves rounded up.
                let int_input = value.above(PLACES - 5) + u64::from(value.digit(PLACES - 6) >= 5);
                if int_input.is_multiple_of(10_000) {
                    int_input / 10_000
                } else {
                    int_input / 10_000 + 1
                }
            }
        };
        Score::from_tenths_capped(tenths)
    }
}

/// The base metrics of a v3 vector, each as the index of its value in the tables above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Base {
    av: usize,
    ac: usize,
    pr: usize,
    ui: usize,
    scope_changed: bool,
    c: usize,
    i: usize,
    a: usize,
}

impl Base {
    /// The base metrics from the value indices [`GRAMMAR`] returned, in its order.
    pub(crate) fn from_values([av, ac, pr, ui, s, c, i, a]: [u8; 8]) -> Base {
        Base {
            av: usize::from(av),
            ac: usize::from(ac),
            pr: usize::from(pr),
            ui: usize::from(ui),
            scope_changed: s == 1,
            c: usize::from(c),
            i: usize::from(i),
            a: usize::from(a),
        }
    }

    /// The base score under the given Roundup.
    pub(crate) fn score(&self, roundup: Roundup) -> Score {
        self.exact_value()
            .map_or(Score::ZERO, |value| roundup.apply(&value))
    }

    /// The value that Roundup receives, in units of 10^-[`PLACES`]; `None` when Impact <= 0.
    fn exact_value(&self) -> Option<Decimal> {
        let iss = self.impact_sub_score();
        let exploitability = self.exploitability();
        if !self.scope_changed {
            // Impact = 6.42 × ISS; BaseScore = Roundup(Minimum(Impact + Exploitability, 10)).
            let impact = 642 * iss;
            if impact == 0 {
                return None;
            }
            return Some(with_places(impact, 8, PLACES).plus(&with_places(
                exploitability,
                10,
                PLACES,
            )));
        }
        // Impact = 7.52 × (ISS − 0.029) − 3.25 × (ISS − 0.02)^15, kept with PLACES − 2 places.
        let linear = with_places(752 * iss.checked_sub(29_000)?, 8, PLACES - 2);
        let power = Decimal::power(iss.checked_sub(20_000)?, 15).times(325);
        let impact = linear.minus(&power).filter(|impact| !impact.is_zero())?;
        // BaseScore = Roundup(Minimum(1.08 × (Impact + Exploitability), 10)).
        let sum = impact.plus(&with_places(exploitability, 10, PLACES - 2));
        Some(sum.times(108))
    }

    /// ISS = 1 − [(1 − Confidentiality) × (1 − Integrity) × (1 − Availability)], in millionths.
    fn impact_sub_score(&self) -> u64 {
        let kept = |index: usize| 100 - CIA_WEIGHT[index];
        1_000_000 - kept(self.c) * kept(self.i) * kept(self.a)
    }

    /// Exploitability = 8.22 × AttackVector × AttackComplexity × PrivilegesRequired × UserInteraction, in 10^-10.
    fn exploitability(&self) -> u64 {
        let privileges = if self.scope_changed {
            PR_WEIGHT_SCOPE_CHANGED[self.pr]
        } else {
            PR_WEIGHT_SCOPE_UNCHANGED[self.pr]
        };
        822 * AV_WEIGHT[self.av] * AC_WEIGHT[self.ac] * privileges * UI_WEIGHT[self.ui]
    }
}

/// `value` × 10^-`places`, expressed in units of 10^-`target`.
fn with_places(value: u64, places: usize, target: usize) -> Decimal {
    Decimal::from_u128(u128::from(value)).shifted(target - places)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{parse, Severity, Version};

    /// Scores `vector` and checks it against the expected score (in tenths) and severity.
    fn assert_scores(vector: &str, tenths: u8, severity: Severity) {
        let score = parse(vector).expect(vector).base_score();
        assert_eq!(
            (score.tenths(), score.severity()),
            (tenths, severity),
            "{vector}"
        );
    }

    fn decimal(tenths_or_finer: u128, places: usize) -> Decimal {
        Decimal::from_u128(tenths_or_finer).shifted(PLACES - places)
    }

    #[test]
    fn roundup_follows_each_specification() {
        // The specifications' own examples: Roundup(4.02) = 4.1 and Roundup(4.00) = 4.0.
        for roundup in [Roundup::V3_0, Roundup::V3_1] {
            assert_eq!(roundup.apply(&decimal(402, 2)).tenths(), 41);
            assert_eq!(roundup.apply(&decimal(400, 2)).tenths(), 40);
            assert_eq!(roundup.apply(&Decimal::default()).tenths(), 0);
            assert_eq!(roundup.apply(&decimal(99_001, 4)).tenths(), 100);
            assert_eq!(roundup.apply(&decimal(108, 1)).tenths(), 100);
        }
        // v3.1 first rounds to five places: 4.000001 becomes 4.00000, then stays 4.0.
        assert_eq!(Roundup::V3_0.apply(&decimal(4_000_001, 6)).tenths(), 41);
        assert_eq!(Roundup::V3_1.apply(&decimal(4_000_001, 6)).tenths(), 40);
        // A half at the sixth place rounds up to 4.00001, which Roundup takes to 4.1.
        assert_eq!(Roundup::V3_1.apply(&decimal(4_000_005, 6)).tenths(), 41);
        assert_eq!(Roundup::V3_1.apply(&decimal(40_000_049, 7)).tenths(), 40);
    }

    /// The worked examples of "Common Vulnerability Scoring System v3.1: Examples" (FIRST,
    /// revision 2, https://www.first.org/cvss/v3.1/examples), sections 3 to 31, base scores.
    const V3_1_EXAMPLES: [(&str, u8, Severity); 30] = [
        // 3. MySQL Stored SQL Injection (CVE-2013-0375)
        (
            "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N",
            64,
            Severity::Medium,
        ),
        // 4. SSLv3 POODLE (CVE-2014-3566)
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
            31,
            Severity::Low,
        ),
        // 5. VMware Guest to Host Escape (CVE-2012-1516)
        (
            "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H",
            99,
            Severity::Critical,
        ),
        // 6. Apache Tomcat XML Parser (CVE-2009-0783)
        (
            "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L",
            42,
            Severity::Medium,
        ),
        // 7. Cisco IOS Arbitrary Command Execution (CVE-2012-0384)
        (
            "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
            72,
            Severity::High,
        ),
        // 8. Apple iWork Denial of Service (CVE-2015-1098)
        (
            "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            78,
            Severity::High,
        ),
        // 9. OpenSSL Heartbleed (CVE-2014-0160)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
            75,
            Severity::High,
        ),
        // 10. GNU Bash 'Shellshock' (CVE-2014-6271)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            98,
            Severity::Critical,
        ),
        // 11. DNS Kaminsky Bug (CVE-2008-1447)
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N",
            68,
            Severity::Medium,
        ),
        // 12. Sophos Login Screen Bypass (CVE-2014-2005)
        (
            "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            68,
            Severity::Medium,
        ),
        // 13. Joomla Directory Traversal (CVE-2010-0467)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N",
            58,
            Severity::Medium,
        ),
        // 14. Cisco Access Control Bypass (CVE-2012-1342)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N",
            58,
            Severity::Medium,
        ),
        // 15. Juniper Proxy ARP Denial of Service (CVE-2013-6014)
        (
            "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H",
            93,
            Severity::Critical,
        ),
        // 16. Cantemo Portal Stored Cross-site Scripting (CVE-2019-7551)
        (
            "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:H",
            90,
            Severity::Critical,
        ),
        // 17. Adobe Acrobat Buffer Overflow (CVE-2009-0658)
        (
            "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            78,
            Severity::High,
        ),
        // 18. Microsoft Windows Bluetooth Remote Code Execution (CVE-2011-1265)
        (
            "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // 19. Apple iOS Security Control Bypass (CVE-2014-2019)
        (
            "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N",
            46,
            Severity::Medium,
        ),
        // 20. SearchBlox Cross-Site Request Forgery (CVE-2015-0970)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // 21. SSL/TLS MITM (CVE-2014-0224), and the embedding-application variant it discusses
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N",
            74,
            Severity::High,
        ),
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:N/A:N",
            53,
            Severity::Medium,
        ),
        // 22. Google Chrome Sandbox Bypass (CVE-2012-5376)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H",
            96,
            Severity::Critical,
        ),
        // 23. Google Chrome PDFium JPEG 2000 Remote Code Execution (CVE-2016-1645)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // 24. "Badlock" (CVE-2016-0128, then CVE-2016-2118)
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N",
            68,
            Severity::Medium,
        ),
        (
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H",
            75,
            Severity::High,
        ),
        // 25. WordPress Mail Plugin Reflected Cross-site Scripting (CVE-2017-5942)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
            61,
            Severity::Medium,
        ),
        // 26. Opera DLL search order hijacking (CVE-2018-18913)
        (
            "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            78,
            Severity::High,
        ),
        // 27. Remote Code Execution in Oracle Outside in Technology (CVE-2016-5558)
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:L",
            86,
            Severity::High,
        ),
        // 28. Lenovo ThinkPwn Exploit (CVE-2016-5729)
        (
            "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H",
            82,
            Severity::High,
        ),
        // 29. Failure to Lock Flash on Resume from sleep (CVE-2015-2890)
        (
            "CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:N/I:H/A:H",
            60,
            Severity::Medium,
        ),
        // 30. Intel DCI Issue (CVE-2018-3652)
        (
            "CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
            76,
            Severity::High,
        ),
    ];

    #[test]
    fn v3_1_examples_document_scores() {
        for (vector, tenths, severity) in V3_1_EXAMPLES {
            assert_scores(vector, tenths, severity);
        }
        // 31. Scripting Engine Memory Corruption (CVE-2019-0884): Internet Explorer, then Edge.
        assert_scores(
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H",
            75,
            Severity::High,
        );
        assert_scores(
            "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
            42,
            Severity::Medium,
        );
    }

    /// The worked examples of "Common Vulnerability Scoring System v3.0: Examples" (FIRST,
    /// https://www.first.org/cvss/v3.0/examples), base scores. The v3.0 document scored
    /// CVE-2012-0384 with PR:L (8.8); v3.1 rescored it PR:H (7.2).
    const V3_0_EXAMPLES: [(&str, u8, Severity); 21] = [
        // phpMyAdmin Reflected Cross-site Scripting (CVE-2013-1937)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
            61,
            Severity::Medium,
        ),
        // MySQL Stored SQL Injection (CVE-2013-0375)
        (
            "CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N",
            64,
            Severity::Medium,
        ),
        // SSLv3 POODLE (CVE-2014-3566)
        (
            "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N",
            31,
            Severity::Low,
        ),
        // VMware Guest to Host Escape (CVE-2012-1516)
        (
            "CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H",
            99,
            Severity::Critical,
        ),
        // Cisco IOS Arbitrary Command Execution (CVE-2012-0384)
        (
            "CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // Apple iWork Denial of Service (CVE-2015-1098)
        (
            "CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            78,
            Severity::High,
        ),
        // OpenSSL Heartbleed (CVE-2014-0160)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
            75,
            Severity::High,
        ),
        // GNU Bash 'Shellshock' (CVE-2014-6271)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            98,
            Severity::Critical,
        ),
        // DNS Kaminsky Bug (CVE-2008-1447)
        (
            "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N",
            68,
            Severity::Medium,
        ),
        // Sophos Login Screen Bypass (CVE-2014-2005)
        (
            "CVSS:3.0/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            68,
            Severity::Medium,
        ),
        // Joomla Directory Traversal (CVE-2010-0467)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N",
            58,
            Severity::Medium,
        ),
        // Cisco Access Control Bypass (CVE-2012-1342)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N",
            58,
            Severity::Medium,
        ),
        // Juniper Proxy ARP Denial of Service (CVE-2013-6014)
        (
            "CVSS:3.0/AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H",
            93,
            Severity::Critical,
        ),
        // DokuWiki Reflected Cross-site Scripting (CVE-2014-9253)
        (
            "CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N",
            54,
            Severity::Medium,
        ),
        // Adobe Acrobat Buffer Overflow (CVE-2009-0658)
        (
            "CVSS:3.0/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            78,
            Severity::High,
        ),
        // Microsoft Windows Bluetooth Remote Code Execution (CVE-2011-1265)
        (
            "CVSS:3.0/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // Apple iOS Security Control Bypass (CVE-2014-2019)
        (
            "CVSS:3.0/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N",
            46,
            Severity::Medium,
        ),
        // SearchBlox Cross-Site Request Forgery (CVE-2015-0970)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
            88,
            Severity::High,
        ),
        // SSL/TLS MITM (CVE-2014-0224)
        (
            "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N",
            74,
            Severity::High,
        ),
        // Google Chrome Sandbox Bypass (CVE-2012-5376)
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H",
            96,
            Severity::Critical,
        ),
        // Apache Tomcat XML Parser (CVE-2009-0783)
        (
            "CVSS:3.0/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L",
            42,
            Severity::Medium,
        ),
    ];

    #[test]
    fn v3_0_examples_document_scores() {
        for (vector, tenths, severity) in V3_0_EXAMPLES {
            assert_scores(vector, tenths, severity);
        }
    }

    #[test]
    fn network_unauthenticated_full_impact_is_critical() {
        let vector = parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!(vector.version(), Version::V3_1);
        assert_eq!(vector.base_score().to_string(), "9.8");
        assert_eq!(vector.base_score().severity().to_string(), "Critical");
    }

    #[test]
    fn scope_change_raises_the_score_and_the_privilege_weights() {
        // Impact 6.05 and exploitability 3.89 give 1.08 × 9.93 = 10.7, capped at 10.
        assert_scores(
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
            100,
            Severity::Critical,
        );
        // PR:L weighs 0.68 when scope changes, 0.62 when it does not.
        assert_scores(
            "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:N/A:N",
            50,
            Severity::Medium,
        );
        assert_scores(
            "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N",
            43,
            Severity::Medium,
        );
        // PR:H weighs 0.5 when scope changes, 0.27 when it does not.
        assert_scores(
            "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N",
            23,
            Severity::Low,
        );
        assert_scores(
            "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
            18,
            Severity::Low,
        );
    }

    #[test]
    fn no_impact_scores_zero_whatever_the_exploitability() {
        for vector in [
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N",
            "CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N",
            "CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:N/I:N/A:N",
        ] {
            assert_scores(vector, 0, Severity::None);
        }
    }

    #[test]
    fn least_exploitable_low_impact_scores() {
        assert_scores(
            "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
            16,
            Severity::Low,
        );
        assert_scores(
            "CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:C/C:L/I:N/A:N",
            18,
            Severity::Low,
        );
    }

    #[test]
    fn weight_tables_match_the_value_lists() {
        assert_eq!(AV.len(), AV_WEIGHT.len());
        assert_eq!(AC.len(), AC_WEIGHT.len());
        assert_eq!(PR.len(), PR_WEIGHT_SCOPE_CHANGED.len());
        assert_eq!(PR.len(), PR_WEIGHT_SCOPE_UNCHANGED.len());
        assert_eq!(UI.len(), UI_WEIGHT.len());
        assert_eq!(CIA.len(), CIA_WEIGHT.len());
        assert_eq!(S, ["U", "C"]);
    }
}
