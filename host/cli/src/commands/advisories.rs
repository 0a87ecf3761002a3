//! `patchwave advisories import`: OSV, CISA KEV and EPSS feeds into the store.

use chrono::Utc;
use patchwave_advisory::{FeedKind, Prune, Refusal};
use patchwave_engine::ingest::{
    self, EpssOutcome, FeedFailure, FeedFetcher, FeedReport, Feeds, FetchSettings, Force,
    ImportOptions, KevOutcome, OsvImport,
};

use crate::exit::{Failure, OPERATIONAL, PARTIAL, USAGE};
use crate::setup::Context;
use crate::term::{errln, outln};

/// How many advisory ids a warning about an unknown ecosystem names.
const IDS_SHOWN: usize = 5;

/// Advisories subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read advisory feeds into the store. Without arguments, the `[advisories]` sources of
    /// the config are read. Each source is a local path, a `file://` URL or an
    /// `http(s)://` URL (only a 200 answer is read; at most 5 redirects, never from https
    /// to http; at most 512 MiB, 1 GiB gunzipped; 30 s to connect, 10 min in all; extra CA
    /// certificates from `[advisories] ca_file`). A malformed record is reported (file, id,
    /// reason) and skipped; the exit code is then 3.
    ///
    /// Each feed (OSV, KEV, EPSS) is stored whole or not at all, and one line per feed says
    /// which. A feed that is empty, has fewer than half the stored entries, is dated more
    /// than a day ahead of this machine's clock, or is older than the stored one is refused
    /// (exit 3) unless --force is given; a feed that cannot be read or stored is not
    /// imported (exit 1). Either way the other feeds are still imported.
    Import {
        /// OSV JSON: a file (one advisory or an array), a directory of `*.json` files, a
        /// `file://` URL, or an `http(s)://` URL of one such document. Repeatable.
        #[arg(long)]
        osv: Vec<String>,
        /// The CISA KEV catalogue (JSON): a file or a URL.
        #[arg(long)]
        kev: Option<String>,
        /// The EPSS scores (CSV): a file (`.gz` gunzipped) or a URL (gunzipped when the
        /// download is gzip).
        #[arg(long)]
        epss: Option<String>,
        /// Store feeds the trust rules refuse (empty, shrunk, future-dated, older). Each
        /// override is written to the audit log first, with --reason and --by.
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the refusals are overridden (with --force).
        #[arg(long, requires = "force")]
        reason: Option<String>,
        /// Who overrides them (with --force).
        #[arg(long, default_value = "operator", requires = "force")]
        by: String,
    },
}

/// Run an advisories subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    let Command::Import {
        osv,
        kev,
        epss,
        force,
        reason,
        by,
    } = command;
    let mut feeds = Feeds { osv, kev, epss };
    if feeds.osv.is_empty() && feeds.kev.is_none() && feeds.epss.is_none() {
        let configured = &ctx.config.advisories;
        feeds = Feeds {
            osv: configured.osv.clone(),
            kev: configured.kev.clone(),
            epss: configured.epss.clone(),
        };
    }
    if feeds.osv.is_empty() && feeds.kev.is_none() && feeds.epss.is_none() {
        return Err(Failure::new(
            USAGE,
            "nothing to import: give --osv/--kev/--epss or configure [advisories] sources",
        ));
    }
    let reason = reason.unwrap_or_default();
    if force && (reason.trim().is_empty() || by.trim().is_empty()) {
        return Err(Failure::new(
            USAGE,
            "--force needs a non-empty --reason (and --by, if given, must not be empty)",
        ));
    }
    let audit = if force {
        Some(ctx.audit().await?)
    } else {
        None
    };
    let fetcher = FeedFetcher::new(FetchSettings {
        ca_file: ctx.config.advisories.ca_file.clone(),
        ..FetchSettings::default()
    })
    .map_err(Failure::op)?;
    let store = ctx.store().await?;
    let options = ImportOptions {
        now: Utc::now(),
        force: audit.as_ref().map(|audit| Force {
            reason: &reason,
            by: &by,
            audit: audit.as_ref(),
        }),
    };
    let report = ingest::import(store.as_ref(), &feeds, &fetcher, options).await;
    if let Some(r) = &report.osv {
        print_feed(FeedKind::Osv, r, osv_line)?;
    }
    if let Some(r) = &report.kev {
        print_feed(FeedKind::Kev, r, kev_lines)?;
    }
    if let Some(r) = &report.epss {
        print_feed(FeedKind::Epss, r, epss_lines)?;
    }
    if let Some(Ok(osv)) = report.osv.as_ref().map(|r| &r.result) {
        warn_unknown_ecosystems(osv);
    }
    let rejected: Vec<_> = report.rejected().collect();
    for r in &rejected {
        errln!("rejected: {r}");
    }
    if !rejected.is_empty() {
        errln!("{} records rejected and skipped", rejected.len());
    }
    let outcomes = report.outcomes();
    let names = |failed: bool| {
        outcomes
            .iter()
            .filter(|(_, f)| f.is_some() == failed)
            .map(|(kind, _)| kind.to_string())
            .collect::<Vec<_>>()
    };
    let (not_imported, imported) = (names(true), names(false));
    if !not_imported.is_empty() {
        let mut message = format!("not imported: {}", not_imported.join(", "));
        if !imported.is_empty() {
            message.push_str(&format!(
                "; imported: {} (each feed is stored on its own)",
                imported.join(", ")
            ));
        }
        let code = if outcomes
            .iter()
            .any(|(_, f)| matches!(f, Some(FeedFailure::Error(_))))
        {
            OPERATIONAL
        } else {
            PARTIAL
        };
        return Err(Failure::new(code, message));
    }
    if rejected.is_empty() {
        Ok(())
    } else {
        Err(Failure::quiet(PARTIAL))
    }
}

/// One feed's lines on stdout: what it stored (`lines`), or why nothing.
fn print_feed<T>(
    kind: FeedKind,
    report: &FeedReport<T>,
    lines: fn(&T) -> Vec<String>,
) -> Result<(), Failure> {
    match &report.result {
        Ok(done) => {
            let mut lines = lines(done);
            if let (Some(first), n @ 1..) = (lines.first_mut(), report.rejected.len()) {
                first.push_str(&format!("; {n} rejected"));
            }
            for (i, line) in lines.iter().enumerate() {
                match i {
                    0 => outln!("{kind}: {line}")?,
                    _ => outln!("  {line}")?,
                }
            }
            for refusal in &report.forced {
                outln!("  forced (audited): {refusal}")?;
            }
        }
        Err(FeedFailure::Refused(refusals)) => {
            outln!(
                "{kind}: refused, nothing changed: {} (--force --reason R overrides)",
                list(refusals)
            )?;
        }
        Err(FeedFailure::Error(e)) => outln!("{kind}: not imported, nothing changed: {e}")?,
    }
    Ok(())
}

fn list(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn osv_line(o: &OsvImport) -> Vec<String> {
    let s = o.stored;
    vec![format!(
        "{} documents; {} advisories new, {} updated, {} unchanged",
        o.documents, s.inserted, s.updated, s.unchanged
    )]
}

fn kev_lines(k: &KevOutcome) -> Vec<String> {
    let s = &k.stored;
    let mut lines = vec![format!(
        "{} added, {} kept, {} removed (kept as tombstones)",
        s.added,
        s.kept,
        s.removed.len()
    )];
    lines.extend(s.removed.iter().map(|t| {
        format!(
            "removed from KEV: {} (at {})",
            t.cve_id,
            t.removed_at.date_naive()
        )
    }));
    lines.extend(prune_line(&k.prune, "tombstoned"));
    lines.extend(
        s.kept_unlisted
            .iter()
            .map(|id| format!("kept live though not listed: {id}")),
    );
    lines
}

fn epss_lines(e: &EpssOutcome) -> Vec<String> {
    let s = e.stored;
    let mut line = format!("{} scores", s.written);
    if s.removed > 0 {
        line.push_str(&format!(", {} no longer listed removed", s.removed));
    }
    if s.kept_unlisted > 0 {
        line.push_str(&format!(
            ", {} stored scores not listed kept",
            s.kept_unlisted
        ));
    }
    let mut lines = vec![line];
    lines.extend(prune_line(&e.prune, "deleted"));
    lines
}

/// Why a feed with rejected records removed less than a clean one would have.
fn prune_line(prune: &Prune, removed: &str) -> Option<String> {
    match prune {
        Prune::Absent => None,
        Prune::AbsentExcept(keep) => Some(format!(
            "{} rejected CVEs keep their stored entries: {}",
            keep.len(),
            keep.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        Prune::Nothing => Some(format!(
            "{removed} nothing: a record without a readable CVE id was rejected"
        )),
    }
}

fn warn_unknown_ecosystems(osv: &OsvImport) {
    for (id, vector, why) in &osv.unscorable {
        errln!(
            "warning: osv: {id}: CVSS vector `{vector}` cannot be scored ({why}): stored, and \
             classified without it"
        );
    }
    for unknown in &osv.unknown_ecosystems {
        let ids = &unknown.advisories;
        let mut shown = ids
            .iter()
            .take(IDS_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if ids.len() > IDS_SHOWN {
            shown.push_str(&format!(" and {} more", ids.len() - IDS_SHOWN));
        }
        errln!(
            "warning: osv: {} advisories name the ecosystem `{}`, which patchwave does not \
             know: stored, never matched: {shown}",
            ids.len(),
            unknown.name
        );
    }
}
