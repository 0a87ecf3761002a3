"""Scores CVSS vectors with the PyPI package `cvss`, the oracle for patchwave-cvss.

Usage: python3 oracle.py INPUT OUTPUT

INPUT has one vector string per line. OUTPUT gets a first line "cvss <version>", then one line
per input vector: its base score with one decimal ("9.8"), or "error: <message>" when the
package refuses the vector.

v3.0 and v3.1 vectors are scored with CVSS3, whose first score is the base score. The score of
CVSS4 applies every metric the vector carries, so a v4.0 vector is validated whole and then
scored reduced to its eleven base metrics, which is its CVSS-B score.

Exits with status 3, saying how to install it, when the package is missing.
"""

import multiprocessing
import os
import sys

try:
    import cvss
    from cvss import CVSS3, CVSS4
    from cvss.exceptions import CVSSError
except ImportError:
    sys.stderr.write(
        "the Python package `cvss` is missing; install it with:\n"
        "    pip install --break-system-packages cvss==3.6\n"
    )
    sys.exit(3)

V4_BASE_METRICS = {"AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"}


def v4_base_only(vector):
    """The vector with only its prefix and base metrics."""
    prefix, *components = vector.split("/")
    kept = [c for c in components if c.split(":", 1)[0] in V4_BASE_METRICS]
    return "/".join([prefix, *kept])


def score(vector):
    """The base score of one vector as text, or the reason the package refuses it."""
    try:
        if vector.startswith("CVSS:4.0/"):
            base_only = v4_base_only(vector)
            if base_only != vector:
                CVSS4(vector)
            base = CVSS4(base_only).base_score
        else:
            base = CVSS3(vector).scores()[0]
    except CVSSError as error:
        return "error: " + str(error).replace("\n", " ")
    return format(float(base), ".1f")


def main():
    input_path, output_path = sys.argv[1], sys.argv[2]
    with open(input_path, encoding="utf-8") as source:
        vectors = source.read().splitlines()
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        scores = pool.map(score, vectors, chunksize=2000)
    with open(output_path, "w", encoding="utf-8") as target:
        target.write("cvss " + getattr(cvss, "__version__", "unknown") + "\n")
        for line in scores:
            target.write(line + "\n")


if __name__ == "__main__":
    main()
