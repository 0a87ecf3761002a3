//! Findings end to end on real parts: this machine's dpkg database scanned by the real
//! Debian plugin into a real store, advisories and a KEV catalogue imported by the
//! `patchwave` binary, versions ordered by the plugin's batched `compare-versions`.

use std::collections::BTreeMap;

use crate::support::{stdout_of, Cli};

/// `dpkg-query` field for one package, or `None` when it is not installed.
fn dpkg_field(package: &str, field: &str) -> Option<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", &format!("-f=${{{field}}}"), package])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_debian_12() -> bool {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release.lines().any(|l| l == "ID=debian") && release.lines().any(|l| l == "VERSION_ID=\"12\"")
}

#[test]
fn findings_of_this_machine_match_exactly_what_the_advisories_say() {
    if !is_debian_12() || dpkg_field("libssl3", "Version").is_none() {
        eprintln!("SKIP: needs a Debian 12 machine with libssl3 installed");
        return;
    }
    let bash = dpkg_field("bash", "Version").unwrap();
    let libssl3 = dpkg_field("libssl3", "Version").unwrap();
    // Every installed binary built from the openssl source (libssl3, openssl, ...).
    let from_openssl: Vec<String> = stdout_of(std::process::Command::new("dpkg-query").args([
        "-W",
        "-f=${db:Status-Abbrev} ${Package} ${source:Package} ${Version}\n",
    ]))
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 4 && f[0] == "ii" && f[2] == "openssl" && f[3] == libssl3)
            .then(|| f[1].to_string())
    })
    .collect();
    assert!(from_openssl.contains(&"libssl3".to_string()));

    let cli = Cli::new();
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert_eq!(code, 0, "{out}{err}");

    let osv = format!(
        r#"[
 {{"schema_version":"1.6.0","id":"PW-T-1","modified":"2026-11-01T00:00:00Z","published":"2026-11-20T00:00:00Z","aliases":["CVE-2026-90001"],
   "severity":[{{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
   "affected":[{{"package":{{"ecosystem":"Debian:12","name":"bash"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"9:0"}}]}}]}}]}},
 {{"schema_version":"1.6.0","id":"PW-T-2","modified":"2026-11-01T00:00:00Z","published":"2026-11-20T00:00:00Z","aliases":["CVE-2026-90002"],
   "affected":[{{"package":{{"ecosystem":"Debian:12","name":"bash"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{bash}"}}]}}]}}]}},
 {{"schema_version":"1.6.0","id":"PW-T-3","modified":"2026-11-01T00:00:00Z","published":"2026-01-10T00:00:00Z","aliases":["CVE-2026-90003"],
   "affected":[{{"package":{{"ecosystem":"Debian:12","name":"openssl"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"last_affected":"{libssl3}"}}]}}],
     "ecosystem_specific":{{"urgency":"medium"}}}}]}},
 {{"schema_version":"1.6.0","id":"PW-T-4","modified":"2026-11-01T00:00:00Z","published":"2026-11-20T00:00:00Z","withdrawn":"2026-11-21T00:00:00Z",
   "affected":[{{"package":{{"ecosystem":"Debian:12","name":"bash"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"9:0"}}]}}]}}]}},
 {{"schema_version":"1.6.0","id":"PW-T-5","modified":"2026-11-01T00:00:00Z",
   "affected":[{{"package":{{"ecosystem":"Ubuntu:22.04:LTS","name":"bash"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"9:0"}}]}}]}}]}},
 {{"id":"PW-T-BROKEN","affected":[]}}
]"#
    );
    let kev = r#"{"title":"t","catalogVersion":"2026.11.25","dateReleased":"2026-11-25T00:00:00.000Z","count":1,"vulnerabilities":[
      {"cveID":"CVE-2026-90003","vendorProject":"OpenSSL","product":"OpenSSL","vulnerabilityName":"t","dateAdded":"2026-11-24",
       "shortDescription":"t","requiredAction":"t","dueDate":"2026-12-15","knownRansomwareCampaignUse":"Unknown","notes":"","cwes":[]}]}"#;
    let osv_path = cli.dir.path().join("osv.json");
    let kev_path = cli.dir.path().join("kev.json");
    std::fs::write(&osv_path, osv).unwrap();
    std::fs::write(&kev_path, kev).unwrap();

    let (code, out, err) = cli.run(&[
        "advisories",
        "import",
        "--osv",
        osv_path.to_str().unwrap(),
        "--kev",
        &format!("file://{}", kev_path.display()),
    ]);
    // The malformed record is reported with file, index and id, the rest is kept: exit 3.
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("5 advisories new"), "{out}");
    assert!(out.contains("kev: 1 added"), "{out}");
    assert!(err.contains("osv.json[5] (PW-T-BROKEN)"), "{err}");

    let (code, out, err) = cli.run(&["findings", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: BTreeMap<String, (String, String, Vec<String>)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let advisories = f["advisories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            (
                f["package"].as_str().unwrap().to_string(),
                (
                    f["class"].as_str().unwrap().to_string(),
                    f["rule"]
                        .as_str()
                        .unwrap()
                        .split(':')
                        .next()
                        .unwrap()
                        .to_string(),
                    advisories,
                ),
            )
        })
        .collect();
    let mut want = BTreeMap::new();
    // 9.8 from the vector; PW-T-2 is fixed exactly at the installed version, PW-T-4 is
    // withdrawn and PW-T-5 is for another release: none of them applies.
    want.insert(
        "bash".to_string(),
        (
            "critical".to_string(),
            "cvss".to_string(),
            vec!["PW-T-1".to_string()],
        ),
    );
    // last_affected is inclusive; Debian urgency medium, escalated by KEV.
    for binary in &from_openssl {
        want.insert(
            binary.clone(),
            (
                "critical".to_string(),
                "kev".to_string(),
                vec!["PW-T-3".to_string()],
            ),
        );
    }
    assert_eq!(got, want);
    assert_eq!(doc["unassessed"].as_array().unwrap().len(), 0);

    let (code, out, err) = cli.run(&["findings", "explain", "localhost", "libssl3"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "PW-T-3 affected[0] (Debian:12 openssl): {libssl3} is in ranges[0]"
        )),
        "{out}"
    );
    assert!(out.contains("vendor class moderate"), "{out}");
    let (code, out, _) = cli.run(&["findings", "--class", "critical", "--format", "csv"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1 + want.len(), "{out}");
}
