//! The score of every CVSS v4.0 MacroVector (specification section 8.3).

/// Each MacroVector's score in tenths, keyed by its EQ1 to EQ6 levels written as six digits.
///
/// Transcribed from `cvss_lookup.js` of the FIRST CVSS v4.0 calculator
/// (github.com/FIRSTdotorg/cvss-v4-calculator, commit c5b0d409ae9f57c44264c6ce5f27d89298e1d32a),
/// which section 8.3 of the specification names as the complete list: 270 MacroVectors, every
/// combination of levels except EQ3 = 2 with EQ6 = 0, which cannot exist (Table 30).
const MACRO_VECTOR_SCORES: [(&str, u8); 270] = [
    ("000000", 100),
    ("000001", 99),
    ("000010", 98),
    ("000011", 95),
    ("000020", 95),
    ("000021", 92),
    ("000100", 100),
    ("000101", 96),
    ("000110", 93),
    ("000111", 87),
    ("000120", 91),
    ("000121", 81),
    ("000200", 93),
    ("000201", 90),
    ("000210", 89),
    ("000211", 80),
    ("000220", 81),
    ("000221", 68),
    ("001000", 98),
    ("001001", 95),
    ("001010", 95),
    ("001011", 92),
    ("001020", 90),
    ("001021", 84),
    ("001100", 93),
    ("001101", 92),
    ("001110", 89),
    ("001111", 81),
    ("001120", 81),
    ("001121", 65),
    ("001200", 88),
    ("001201", 80),
    ("001210", 78),
    ("001211", 70),
    ("001220", 69),
    ("001221", 48),
    ("002001", 92),
    ("002011", 82),
    ("002021", 72),
    ("002101", 79),
    ("002111", 69),
    ("002121", 50),
    ("002201", 69),
    ("002211", 55),
    ("002221", 27),
    ("010000", 99),
    ("010001", 97),
    ("010010", 95),
    ("010011", 92),
    ("010020", 92),
    ("010021", 85),
    ("010100", 95),
    ("010101", 91),
    ("010110", 90),
    ("010111", 83),
    ("010120", 84),
    ("010121", 71),
    ("010200", 92),
    ("010201", 81),
    ("010210", 82),
    ("010211", 71),
    ("010220", 72),
    ("010221", 53),
    ("011000", 95),
    ("011001", 93),
    ("011010", 92),
    ("011011", 85),
    ("011020", 85),
    ("011021", 73),
    ("011100", 92),
    ("011101", 82),
    ("011110", 80),
    ("011111", 72),
    ("011120", 70),
    ("011121", 59),
    ("011200", 84),
    ("011201", 70),
    ("011210", 71),
    ("011211", 52),
    ("011220", 50),
    ("011221", 30),
    ("012001", 86),
    ("012011", 75),
    ("012021", 52),
    ("012101", 71),
    ("012111", 52),
    ("012121", 29),
    ("012201", 63),
    ("012211", 29),
    ("012221", 17),
    ("100000", 98),
    ("100001", 95),
    ("100010", 94),
    ("100011", 87),
    ("100020", 91),
    ("100021", 81),
    ("100100", 94),
    ("100101", 89),
    ("100110", 86),
    ("100111", 74),
    ("100120", 77),
    ("100121", 64),
    ("100200", 87),
    ("100201", 75),
    ("100210", 74),
    ("100211", 63),
    ("100220", 63),
    ("100221", 49),
    ("101000", 94),
    ("101001", 89),
    ("101010", 88),
    ("101011", 77),
    ("101020", 76),
    ("101021", 67),
    ("101100", 86),
    ("101101", 76),
    ("101110", 74),
    ("101111", 58),
    ("101120", 59),
    ("101121", 50),
    ("101200", 72),
    ("101201", 57),
    ("101210", 57),
    ("101211", 52),
    ("101220", 52),
    ("101221", 25),
    ("102001", 83),
    ("102011", 70),
    ("102021", 54),
    ("102101", 65),
    ("102111", 58),
    ("102121", 26),
    ("102201", 53),
    ("102211", 21),
    ("102221", 13),
    ("110000", 95),
    ("110001", 90),
    ("110010", 88),
    ("110011", 76),
    ("110020", 76),
    ("110021", 70),
    ("110100", 90),
    ("110101", 77),
    ("110110", 75),
    ("110111", 62),
    ("110120", 61),
    ("110121", 53),
    ("110200", 77),
    ("110201", 66),
    ("110210", 68),
    ("110211", 59),
    ("110220", 52),
    ("110221", 30),
    ("111000", 89),
    ("111001", 78),
    ("111010", 76),
    ("111011", 67),
    ("111020", 62),
    ("111021", 58),
    ("111100", 74),
    ("111101", 59),
    ("111110", 57),
    ("111111", 57),
    ("111120", 47),
    ("111121", 23),
    ("111200", 61),
    ("111201", 52),
    ("111210", 57),
    ("111211", 29),
    ("111220", 24),
    ("111221", 16),
    ("112001", 71),
    ("112011", 59),
    ("112021", 30),
    ("112101", 58),
    ("112111", 26),
    ("112121", 15),
    ("112201", 23),
    ("112211", 13),
    ("112221", 6),
    ("200000", 93),
    ("200001", 87),
    ("200010", 86),
    ("200011", 72),
    ("200020", 75),
    ("200021", 58),
    ("200100", 86),
    ("200101", 74),
    ("200110", 74),
    ("200111", 61),
    ("200120", 56),
    ("200121", 34),
    ("200200", 70),
    ("200201", 54),
    ("200210", 52),
    ("200211", 40),
    ("200220", 40),
    ("200221", 22),
    ("201000", 85),
    ("201001", 75),
    ("201010", 74),
    ("201011", 55),
    ("201020", 62),
    ("201021", 51),
    ("201100", 72),
    ("201101", 57),
    ("201110", 55),
    ("201111", 41),
    ("201120", 46),
    ("201121", 19),
    ("201200", 53),
    ("201201", 36),
    ("201210", 34),
    ("201211", 19),
    ("201220", 19),
    ("201221", 8),
    ("202001", 64),
    ("202011", 51),
    ("202021", 20),
    ("202101", 47),
    ("202111", 21),
    ("202121", 11),
    ("202201", 24),
    ("202211", 9),
    ("202221", 4),
    ("210000", 88),
    ("210001", 75),
    ("210010", 73),
    ("210011", 53),
    ("210020", 60),
    ("210021", 50),
    ("210100", 73),
    ("210101", 55),
    ("210110", 59),
    ("210111", 40),
    ("210120", 41),
    ("210121", 20),
    ("210200", 54),
    ("210201", 43),
    ("210210", 45),
    ("210211", 22),
    ("210220", 20),
    ("210221", 11),
    ("211000", 75),
    ("211001", 55),
    ("211010", 58),
    ("211011", 45),
    ("211020", 40),
    ("211021", 21),
    ("211100", 61),
    ("211101", 51),
    ("211110", 48),
    ("211111", 18),
    ("211120", 20),
    ("211121", 9),
    ("211200", 46),
    ("211201", 18),
    ("211210", 17),
    ("211211", 7),
    ("211220", 8),
    ("211221", 2),
    ("212001", 53),
    ("212011", 24),
    ("212021", 14),
    ("212101", 24),
    ("212111", 12),
    ("212121", 5),
    ("212201", 10),
    ("212211", 3),
    ("212221", 1),
];

/// The number of levels of EQ1 to EQ6 (Tables 24 to 29).
const LEVELS: [usize; 6] = [3, 2, 3, 3, 3, 2];

/// The number of level combinations: 3 × 2 × 3 × 3 × 3 × 2.
const COMBINATIONS: usize = 324;

/// The scores indexed by level combination. Building it at compile time also checks the
/// transcription: a malformed key, a level out of range, a duplicate or a score above 10.0
/// fails the build.
static SCORES: [Option<u8>; COMBINATIONS] = index(&MACRO_VECTOR_SCORES);

const fn index(entries: &[(&str, u8)]) -> [Option<u8>; COMBINATIONS] {
    let mut table = [None; COMBINATIONS];
    let mut entry = 0;
    while entry < entries.len() {
        let (key, score) = entries[entry];
        let digits = key.as_bytes();
        assert!(digits.len() == 6, "a MacroVector has six levels");
        assert!(score <= 100, "scores are at most 10.0");
        let mut combination = 0;
        let mut eq = 0;
        while eq < 6 {
            assert!(digits[eq] >= b'0', "levels are digits");
            let level = (digits[eq] - b'0') as usize;
            assert!(level < LEVELS[eq], "level out of range");
            combination = combination * LEVELS[eq] + level;
            eq += 1;
        }
        assert!(table[combination].is_none(), "MacroVector listed twice");
        table[combination] = Some(score);
        entry += 1;
    }
    table
}

/// The score in tenths of the MacroVector with levels EQ1 to EQ6, if the table lists it.
pub(crate) fn macro_vector_score(levels: [u8; 6]) -> Option<u8> {
    let mut combination = 0;
    for (level, count) in levels.iter().zip(LEVELS) {
        let level = usize::from(*level);
        if level >= count {
            return None;
        }
        combination = combination * count + level;
    }
    SCORES.get(combination).copied().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_macro_vector_but_the_impossible_ones() {
        let mut listed = 0;
        for combination in 0..COMBINATIONS {
            let mut rest = combination;
            let mut levels = [0_u8; 6];
            for eq in (0..6).rev() {
                levels[eq] = u8::try_from(rest % LEVELS[eq]).unwrap_or(u8::MAX);
                rest /= LEVELS[eq];
            }
            let impossible = levels[2] == 2 && levels[5] == 0;
            assert_eq!(
                macro_vector_score(levels).is_some(),
                !impossible,
                "{levels:?}"
            );
            listed += usize::from(!impossible);
        }
        assert_eq!(listed, 270);
    }

    #[test]
    fn reads_the_published_scores() {
        assert_eq!(macro_vector_score([0, 0, 0, 0, 0, 0]), Some(100));
        assert_eq!(macro_vector_score([0, 0, 0, 0, 0, 1]), Some(99));
        assert_eq!(macro_vector_score([0, 0, 0, 1, 0, 0]), Some(100));
        assert_eq!(macro_vector_score([0, 0, 0, 1, 1, 0]), Some(93));
        assert_eq!(macro_vector_score([1, 0, 1, 2, 0, 0]), Some(72));
        assert_eq!(macro_vector_score([2, 1, 2, 2, 2, 1]), Some(1));
    }

    #[test]
    fn refuses_levels_out_of_range() {
        assert_eq!(macro_vector_score([3, 0, 0, 0, 0, 0]), None);
        assert_eq!(macro_vector_score([0, 2, 0, 0, 0, 0]), None);
        assert_eq!(macro_vector_score([0, 0, 0, 0, 0, 2]), None);
        assert_eq!(macro_vector_score([0, 0, 2, 0, 0, 0]), None);
    }
}
