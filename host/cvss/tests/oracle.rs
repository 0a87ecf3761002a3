//! Oracle test: patchwave-cvss against an independent implementation, the PyPI package `cvss`
//! (Red Hat Product Security's library, whose JavaScript twin became FIRST's v4.0 calculator).
//!
//! The vectors: every v3.0 and v3.1 base vector (2,592 each) and 20,000 more of each with
//! optional metrics in random order; every second v4.0 base vector in enumeration order
//! (52,488 of 104,976, every value of every metric included) and 10,000 more with optional
//! metrics in specification order; and 3,000 malformed vectors that both must refuse. Scoring
//! all 104,976 agrees as well, but doubles the test's time in the Python package.
//! A seeded SplitMix64 makes the set the same on every run. `tests/oracle.py` scores them with
//! `python3`, or the interpreter `PATCHWAVE_PYTHON` names. Without the `cvss` package the test
//! fails and says how to install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// A metric's abbreviation and its allowed values, as the specification's vector table lists them.
type Metric = (&'static str, &'static [&'static str]);

const CIA: &[&str] = &["H", "L", "N"];
const REQUIREMENT: &[&str] = &["X", "H", "M", "L"];

/// CVSS v3.0 and v3.1, Table 15.
const V3_BASE: [Metric; 8] = [
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "R"]),
    ("S", &["U", "C"]),
    ("C", CIA),
    ("I", CIA),
    ("A", CIA),
];
const V3_OPTIONAL: [Metric; 14] = [
    ("E", &["X", "H", "F", "P", "U"]),
    ("RL", &["X", "U", "W", "T", "O"]),
    ("RC", &["X", "C", "R", "U"]),
    ("CR", REQUIREMENT),
    ("IR", REQUIREMENT),
    ("AR", REQUIREMENT),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "R"]),
    ("MS", &["X", "U", "C"]),
    ("MC", &["X", "N", "L", "H"]),
    ("MI", &["X", "N", "L", "H"]),
    ("MA", &["X", "N", "L", "H"]),
];

/// CVSS v4.0, Table 23, in its fixed order.
const V4_BASE: [Metric; 11] = [
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", CIA),
    ("VI", CIA),
    ("VA", CIA),
    ("SC", CIA),
    ("SI", CIA),
    ("SA", CIA),
];
const V4_OPTIONAL: [Metric; 21] = [
    ("E", &["X", "A", "P", "U"]),
    ("CR", REQUIREMENT),
    ("IR", REQUIREMENT),
    ("AR", REQUIREMENT),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "N", "L", "H"]),
    ("MVI", &["X", "N", "L", "H"]),
    ("MVA", &["X", "N", "L", "H"]),
    ("MSC", &["X", "N", "L", "H"]),
    ("MSI", &["X", "N", "L", "H", "S"]),
    ("MSA", &["X", "N", "L", "H", "S"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

const RANDOM_V3_PER_VERSION: usize = 20_000;
/// Every how many v4.0 base vectors, in enumeration order, one goes to the oracle.
const V4_BASE_STRIDE: usize = 2;
const RANDOM_V4: usize = 10_000;
const MALFORMED: usize = 3_000;

/// SplitMix64 (Steele, Lea and Flood), enough to make the vector set reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[self.below(values.len())]
    }

    fn percent(&mut self, chance: usize) -> bool {
        self.below(100) < chance
    }
}

fn component((name, values): Metric, value_index: usize) -> String {
    format!("{name}:{}", values[value_index])
}

/// Every vector of the given base metrics, in table order.
fn every_base_vector(prefix: &str, base: &[Metric]) -> Vec<String> {
    let total: usize = base.iter().map(|(_, values)| values.len()).product();
    (0..total)
        .map(|mut rest| {
            let mut components = Vec::with_capacity(base.len());
            for metric in base.iter().rev() {
                components.push(component(*metric, rest % metric.1.len()));
                rest /= metric.1.len();
            }
            components.reverse();
            format!("{prefix}/{}", components.join("/"))
        })
        .collect()
}

/// Random base values plus each optional metric with probability `chance` %.
fn random_components(
    rng: &mut SplitMix64,
    base: &[Metric],
    optional: &[Metric],
    chance: usize,
) -> Vec<String> {
    let mut components: Vec<String> = base
        .iter()
        .map(|(name, values)| format!("{name}:{}", rng.pick(values)))
        .collect();
    for (name, values) in optional {
        if rng.percent(chance) {
            components.push(format!("{name}:{}", rng.pick(values)));
        }
    }
    components
}

/// A v3 vector with optional metrics and every component in random order (v3 allows any order).
fn random_v3(rng: &mut SplitMix64, prefix: &str) -> String {
    let mut components = random_components(rng, &V3_BASE, &V3_OPTIONAL, 40);
    for i in (1..components.len()).rev() {
        components.swap(i, rng.below(i + 1));
    }
    format!("{prefix}/{}", components.join("/"))
}

/// A v4.0 vector with optional metrics, in the order v4.0 requires.
fn random_v4(rng: &mut SplitMix64) -> String {
    let components = random_components(rng, &V4_BASE, &V4_OPTIONAL, 30);
    format!("CVSS:4.0/{}", components.join("/"))
}

/// A valid vector broken in one of the ways both implementations must refuse.
fn malformed(rng: &mut SplitMix64, valid: &str) -> String {
    let (prefix, rest) = valid.split_once('/').unwrap();
    let mut components: Vec<String> = rest.split('/').map(str::to_owned).collect();
    let victim = rng.below(components.len());
    match rng.below(4) {
        0 => {
            let copy = components[victim].clone();
            components.push(copy);
        }
        1 => {
            let name = components[victim].split_once(':').unwrap().0.to_owned();
            components[victim] = format!("{name}:Q");
        }
        2 => {
            let base: &[Metric] = if prefix == "CVSS:4.0" {
                &V4_BASE
            } else {
                &V3_BASE
            };
            let (name, _) = base[rng.below(base.len())];
            components.retain(|component| !component.starts_with(&format!("{name}:")));
        }
        _ => components.insert(victim, "ZZ:X".to_owned()),
    }
    format!("{prefix}/{}", components.join("/"))
}

fn vector_set() -> Vec<String> {
    let mut rng = SplitMix64(0x5EED_C055);
    let mut vectors = Vec::new();
    for prefix in ["CVSS:3.0", "CVSS:3.1"] {
        vectors.extend(every_base_vector(prefix, &V3_BASE));
        vectors.extend((0..RANDOM_V3_PER_VERSION).map(|_| random_v3(&mut rng, prefix)));
    }
    vectors.extend(
        every_base_vector("CVSS:4.0", &V4_BASE)
            .into_iter()
            .step_by(V4_BASE_STRIDE),
    );
    vectors.extend((0..RANDOM_V4).map(|_| random_v4(&mut rng)));
    let v3_1_base = every_base_vector("CVSS:3.1", &V3_BASE);
    let malformed_vectors: Vec<String> = (0..MALFORMED)
        .map(|_| {
            let valid = match rng.below(3) {
                0 => random_v3(&mut rng, "CVSS:3.0"),
                1 => v3_1_base[rng.below(v3_1_base.len())].clone(),
                _ => random_v4(&mut rng),
            };
            malformed(&mut rng, &valid)
        })
        .collect();
    vectors.extend(malformed_vectors);
    vectors
}

/// What `tests/oracle.py` says of each vector, and the `cvss` version it used.
fn oracle(vectors: &[String], dir: &Path) -> (String, Vec<String>) {
    let input = dir.join("vectors.txt");
    let output = dir.join("scores.txt");
    std::fs::write(&input, vectors.join("\n") + "\n").unwrap();
    let python = std::env::var("PATCHWAVE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle.py");
    let run = Command::new(&python)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap_or_else(|error| {
            panic!("could not run the oracle with {python:?}: {error}; install Python 3 or set PATCHWAVE_PYTHON")
        });
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the oracle {} failed ({}):\n{stderr}",
        script.display(),
        run.status
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().to_owned();
    let answers: Vec<String> = lines.map(str::to_owned).collect();
    assert_eq!(
        answers.len(),
        vectors.len(),
        "the oracle ({version}) answered every vector"
    );
    (version, answers)
}

/// Our answer in the oracle's terms: the score with one decimal, or "error: ...".
fn ours(vector: &str) -> String {
    match patchwave_cvss::parse(vector) {
        Ok(parsed) => parsed.base_score().to_string(),
        Err(error) => format!("error: {error}"),
    }
}

#[test]
fn every_score_agrees_with_the_cvss_python_package() {
    let vectors = vector_set();
    let dir = tempfile::tempdir().unwrap();
    let (version, theirs) = oracle(&vectors, dir.path());

    let mut compared = [0_usize; 3];
    let mut refused = 0;
    let mut disagreements = Vec::new();
    for (vector, theirs) in vectors.iter().zip(&theirs) {
        let ours = ours(vector);
        let agree = match (ours.starts_with("error:"), theirs.starts_with("error:")) {
            (true, true) => {
                refused += 1;
                true
            }
            (false, false) => ours == *theirs,
            _ => false,
        };
        if agree {
            let family = ["CVSS:3.0", "CVSS:3.1", "CVSS:4.0"]
                .iter()
                .position(|p| vector.starts_with(p));
            if let (Some(family), false) = (family, ours.starts_with("error:")) {
                compared[family] += 1;
            }
        } else {
            disagreements.push((vector, ours, theirs));
        }
    }

    let mut report = String::new();
    for (vector, ours, theirs) in disagreements.iter().take(20) {
        writeln!(
            report,
            "  {vector}\n    ours:   {ours}\n    theirs: {theirs}"
        )
        .unwrap();
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} vectors disagree with the Python package ({version}); the first ones:\n{report}",
        disagreements.len(),
        vectors.len()
    );
    // Each family was compared in full, and every malformed vector was refused by both.
    assert_eq!(
        compared,
        [
            2_592 + RANDOM_V3_PER_VERSION,
            2_592 + RANDOM_V3_PER_VERSION,
            104_976_usize.div_ceil(V4_BASE_STRIDE) + RANDOM_V4
        ]
    );
    assert_eq!(refused, MALFORMED);
}
