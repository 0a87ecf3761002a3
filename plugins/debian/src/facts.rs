//! `facts`, `inventory` and `upgradable`: the read-only questions.

use patchwave_plugin_sdk::{Installed, OsFacts, PackageTable, PluginError};

use crate::commands;
use crate::host::{run_ok, stdout_text, Host};
use crate::os_release::OsRelease;
use crate::{apt, dpkg, OS_IDS};

/// What the target says about itself; `unsupported` unless it is Debian, Ubuntu or a
/// derivative naming one of them in `ID_LIKE`.
pub fn facts(host: &mut impl Host) -> Result<OsFacts, PluginError> {
    let rel = OsRelease::parse(&read_os_release(host)?);
    if !rel.is_like_any(OS_IDS) {
        return Err(PluginError::Unsupported(format!(
            "os-release ID {:?} (ID_LIKE {:?}) is neither Debian nor Ubuntu",
            rel.id,
            rel.id_like.join(" ")
        )));
    }

    let cmd = commands::UNAME.command::<&str>(&[]);
    let uname = run_ok(host, &cmd)?;
    let mut words = uname.split_whitespace();
    let (Some(kernel), Some(arch), None) = (words.next(), words.next(), words.next()) else {
        return Err(PluginError::Parse(format!(
            "uname -r -m: expected release and machine, got {uname:?}"
        )));
    };
    let (kernel, arch) = (kernel.to_string(), arch.to_string());

    let cmd = commands::REBOOT_REQUIRED.command::<&str>(&[]);
    let out = host.exec(&cmd)?;
    let reboot_required = match out.status {
        0 => true,
        1 => false,
        _ => {
            return Err(PluginError::CommandFailed(patchwave_plugin_sdk::failure(
                &cmd, &out,
            )))
        }
    };

    Ok(OsFacts {
        id: rel.id,
        version_id: rel.version_id,
        codename: rel.codename,
        pretty_name: rel.pretty_name,
        kernel,
        arch,
        reboot_required,
    })
}

/// `/etc/os-release`, or `/usr/lib/os-release` when the first cannot be read.
fn read_os_release(host: &mut impl Host) -> Result<String, PluginError> {
    let cmd = commands::OS_RELEASE.command::<&str>(&[]);
    let out = host.exec(&cmd)?;
    if out.status == 0 {
        return Ok(stdout_text(out));
    }
    run_ok(host, &commands::OS_RELEASE_FALLBACK.command::<&str>(&[]))
}

/// Every package instance with a version on disk (see [`dpkg::parse_inventory`]).
pub fn inventory(host: &mut impl Host) -> Result<PackageTable, PluginError> {
    let text = run_ok(host, &commands::DPKG_QUERY_ALL.command::<&str>(&[]))?;
    dpkg::parse_inventory_table(text)
}

/// Packages `apt-get upgrade` would upgrade, with their candidate versions. Uses the
/// package lists as they are: refreshing them (`apt-get update`) is a separate concern.
pub fn upgradable(host: &mut impl Host) -> Result<Vec<Installed>, PluginError> {
    let text = run_ok(host, &commands::APT_SIMULATE_UPGRADE.command::<&str>(&[]))?;
    apt::parse_upgradable(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{out, scripted};

    const OS_RELEASE: &str = "cat /etc/os-release";
    const UNAME: &str = "uname -r -m";
    const REBOOT: &str = "test -e /var/run/reboot-required";

    #[test]
    fn debian_facts() {
        let mut host = scripted()
            .expect(
                OS_RELEASE,
                out(0, include_str!("../tests/data/os-release-debian12")),
            )
            .expect(UNAME, out(0, "6.1.0-18-amd64 x86_64\n"))
            .expect(REBOOT, out(1, ""));
        let f = facts(&mut host).unwrap();
        host.done();
        assert_eq!(f.id, "debian");
        assert_eq!(f.version_id, "12");
        assert_eq!(f.codename.as_deref(), Some("bookworm"));
        assert_eq!(f.kernel, "6.1.0-18-amd64");
        assert_eq!(f.arch, "x86_64");
        assert!(!f.reboot_required);
    }

    #[test]
    fn fallback_os_release_and_reboot() {
        let mut host = scripted()
            .expect(OS_RELEASE, out(1, ""))
            .expect(
                "cat /usr/lib/os-release",
                out(
                    0,
                    "ID=pop\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=\"22.04\"\n",
                ),
            )
            .expect(UNAME, out(0, "6.8.0 aarch64\n"))
            .expect(REBOOT, out(0, ""));
        let f = facts(&mut host).unwrap();
        host.done();
        assert_eq!((f.id.as_str(), f.reboot_required), ("pop", true));
    }

    #[test]
    fn unsupported_and_failures() {
        let mut host = scripted().expect(OS_RELEASE, out(0, "ID=rocky\nID_LIKE=\"rhel\"\n"));
        assert!(matches!(facts(&mut host), Err(PluginError::Unsupported(_))));
        host.done();

        let mut host = scripted()
            .expect(OS_RELEASE, out(0, "ID=debian\n"))
            .expect(UNAME, out(0, "6.1.0\n"));
        assert!(matches!(facts(&mut host), Err(PluginError::Parse(_))));

        let mut host = scripted()
            .expect(OS_RELEASE, out(0, "ID=debian\n"))
            .expect(UNAME, out(0, "6.1.0 x86_64\n"))
            .expect(REBOOT, out(2, ""));
        assert!(matches!(
            facts(&mut host),
            Err(PluginError::CommandFailed(_))
        ));

        let mut host = scripted().expect(OS_RELEASE, Err(PluginError::Denied("cat".into())));
        assert!(matches!(facts(&mut host), Err(PluginError::Denied(_))));

        let mut host = scripted()
            .expect(OS_RELEASE, out(1, ""))
            .expect("cat /usr/lib/os-release", out(1, ""));
        assert!(matches!(
            facts(&mut host),
            Err(PluginError::CommandFailed(_))
        ));
    }

    #[test]
    fn inventory_and_upgradable_run_their_queries() {
        let mut host = scripted().expect(
            &format!("dpkg-query -W {}", dpkg::SHOW_FORMAT),
            out(0, "ii \tbash\t5.2\tamd64\tbash\nrc \told\t1\tamd64\told\n"),
        );
        assert_eq!(inventory(&mut host).unwrap().unpack().unwrap().len(), 1);
        let mut host = scripted().expect(
            "apt-get -s -o Debug::NoLocking=1 upgrade",
            out(0, "Inst bash [5.2] (5.3 Debian:12 [amd64])\n"),
        );
        let up = upgradable(&mut host).unwrap();
        assert_eq!(
            (up[0].name.as_str(), up[0].version.as_str()),
            ("bash", "5.3")
        );
        let mut host =
            scripted().expect("apt-get -s -o Debug::NoLocking=1 upgrade", out(100, "E: x"));
        assert!(matches!(
            upgradable(&mut host),
            Err(PluginError::CommandFailed(_))
        ));
    }
}
