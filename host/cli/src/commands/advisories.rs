//! `patchwave advisories import`: OSV, CISA KEV and EPSS feeds into the store.

use chrono::Utc;
use patchwave_engine::ingest::{self, FeedFetcher, Feeds, FetchSettings};

use crate::exit::{Failure, PARTIAL, USAGE};
use crate::setup::Context;
use crate::term::{errln, outln};

/// Advisories subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read advisory feeds into the store. Without arguments, the `[advisories]` sources of
    /// the config are read. Each source is a local path, a `file://` URL or an
    /// `http(s)://` URL (only a 200 answer is read; at most 5 redirects, never from https
    /// to http; at most 512 MiB, 1 GiB gunzipped; 30 s to connect, 10 min in all; extra CA
    /// certificates from `[advisories] ca_file`). A malformed record is reported (file, id,
    /// reason) and skipped; the exit code is then 3.
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
    },
}

/// Run an advisories subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    let Command::Import { osv, kev, epss } = command;
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
    let fetcher = FeedFetcher::new(FetchSettings {
        ca_file: ctx.config.advisories.ca_file.clone(),
        ..FetchSettings::default()
    })
    .map_err(Failure::op)?;
    let store = ctx.store().await?;
    let report = ingest::import(store.as_ref(), &feeds, &fetcher, Utc::now())
        .await
        .map_err(Failure::op)?;
    if report.osv_documents > 0 {
        let o = report.osv;
        outln!(
            "osv: {} documents; {} advisories new, {} updated, {} unchanged",
            report.osv_documents, o.inserted, o.updated, o.unchanged
        )?;
    }
    if let Some(k) = &report.kev {
        outln!(
            "kev: {} added, {} kept, {} removed (kept as tombstones)",
            k.added,
            k.kept,
            k.removed.len()
        )?;
        for t in &k.removed {
            outln!(
                "  removed from KEV: {} (at {})",
                t.cve_id,
                t.removed_at.date_naive()
            )?;
        }
    }
    if let Some(n) = report.epss {
        outln!("epss: {n} scores")?;
    }
    for r in &report.rejected {
        errln!("rejected: {r}");
    }
    if report.rejected.is_empty() {
        Ok(())
    } else {
        errln!("{} records rejected and skipped", report.rejected.len());
        Err(Failure::quiet(PARTIAL))
    }
}
