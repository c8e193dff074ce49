//! `quiver gc`: permanently removes soft-deleted runs and experiments whose
//! deletion is older than a threshold, with everything below them and their
//! artifacts. An admin command run against the database and the artifact root
//! (like `quiver migrate`), not through the API.
//!
//! Artifacts go first, then rows (one transaction per run or experiment), so
//! an interrupted gc leaves rows that the next gc removes. Only artifacts
//! behind this server's own `mlflow-artifacts:` URIs are deleted, each run or
//! logged model by its own directory (`.../<run id>/`, `.../<model id>/`) and
//! an experiment's directory only when it is the server-assigned
//! `mlflow-artifacts:/<id>` that no other experiment points into.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, bail};
use quiver_artifacts::ArtifactsService;
use quiver_artifacts::path::ArtifactPath;
use quiver_common::Namespace;
use quiver_common::config::Config;
use quiver_tracking::store::gc::DEFAULT_EXPERIMENT_ID;
use quiver_tracking::store::{
    GcExperiment, GcLoggedModel, GcRun, GcStore, Lifecycle, SqlTrackingStore,
};

/// Arguments of `quiver gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Minimum time since deletion, as #d#h#m#s with optional decimals (30d,
    /// 12h, 1d12h, 1.5h, 0s = everything deleted so far).
    #[arg(long)]
    older_than: String,
    /// Only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Only these runs (comma-separated). Each must be deleted and old enough,
    /// else nothing at all is removed.
    #[arg(long, value_delimiter = ',')]
    run_ids: Vec<String>,
    /// Only these experiments of --namespace (comma-separated; ids are per
    /// namespace). Each must be deleted and old enough, else nothing at all
    /// is removed.
    #[arg(long, value_delimiter = ',')]
    experiment_ids: Vec<String>,
    /// Report what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Artifact root URL; overrides artifacts.root.
    #[arg(long)]
    artifacts_root: Option<String>,
}

/// Parses `#d#h#m#s` (each unit at most once, in that order, decimals
/// allowed, as `mlflow gc --older-than`) into milliseconds.
fn parse_older_than(text: &str) -> anyhow::Result<i64> {
    const UNITS: [(char, f64); 4] = [
        ('d', 86_400_000.0),
        ('h', 3_600_000.0),
        ('m', 60_000.0),
        ('s', 1_000.0),
    ];
    let invalid = || {
        anyhow::anyhow!(
            "invalid --older-than '{text}': expected #d#h#m#s, e.g. 30d, 12h, 1d12h, 1.5h or 0s"
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut next_unit = 0;
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..end].parse().map_err(|_| invalid())?;
        let unit = rest[end..].chars().next().ok_or_else(invalid)?;
        let offset = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        total += number * UNITS[next_unit + offset].1;
        next_unit += offset + 1;
        rest = &rest[end + unit.len_utf8()..];
    }
    // About 290,000 years: far beyond any timestamp, far inside i64.
    if !total.is_finite() || total > 9.0e18 {
        return Err(invalid());
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(total.round() as i64)
}

/// Formats an age in ms for messages.
fn age(ms: i64) -> String {
    let seconds = ms / 1000;
    match seconds {
        s if s >= 86_400 => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// Where a run's or logged model's own files are: the directory holding its
/// `artifacts` (`.../<id>/`), when its URI is this server's and ends in
/// `<id>/artifacts` as every URI the server assigns does.
fn own_directory(uri: &str, id: &str) -> Option<ArtifactPath> {
    let path = ArtifactPath::from_proxied_uri(uri)?;
    let segments = path.segments();
    let [.., dir, last] = segments else {
        return None;
    };
    if dir != id || last != "artifacts" {
        return None;
    }
    ArtifactPath::parse(&segments[..segments.len() - 1].join("/")).ok()
}

/// The experiment's own directory: only for the server-assigned
/// `mlflow-artifacts:/<id>`, and only when no other experiment's location
/// lies inside it (a location chosen under `artifacts.allowed_locations`).
fn experiment_directory(
    experiment: &GcExperiment,
    all: &[GcExperiment],
) -> Result<ArtifactPath, String> {
    let id = experiment.experiment_id.to_string();
    let own = ArtifactPath::from_proxied_uri(&experiment.artifact_location)
        .filter(|path| path.segments() == [id.as_str()])
        .ok_or_else(|| {
            format!(
                "its location '{}' is not this server's mlflow-artifacts:/{id}",
                experiment.artifact_location
            )
        })?;
    let shared = all.iter().find(|other| {
        other.experiment_id != experiment.experiment_id
            && ArtifactPath::from_proxied_uri(&other.artifact_location)
                .is_some_and(|path| path.segments().first() == Some(&id))
    });
    match shared {
        Some(other) => Err(format!(
            "experiment {} stores its artifacts inside it ('{}')",
            other.experiment_id, other.artifact_location
        )),
        None => Ok(own),
    }
}

/// Counts and messages of one gc.
#[derive(Default)]
struct Report {
    dry_run: bool,
    runs: u64,
    experiments: u64,
    models: u64,
    objects: u64,
    skipped: u64,
    kept: u64,
    errors: u64,
}

impl Report {
    fn say(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }

    fn summary(&self) -> String {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        format!(
            "quiver gc: {verb} {} runs, {} experiments, {} logged models, {} artifact objects \
             ({} artifact locations skipped, {} kept for registered model versions, {} errors)",
            self.runs,
            self.experiments,
            self.models,
            self.objects,
            self.skipped,
            self.kept,
            self.errors
        )
    }
}

/// What to remove in one namespace.
struct Plan {
    namespace: Namespace,
    runs: Vec<GcRun>,
    experiments: Vec<GcExperiment>,
    all_experiments: Vec<GcExperiment>,
}

struct Gc<'a> {
    store: &'a SqlTrackingStore,
    artifacts: &'a ArtifactsService,
    report: Report,
    /// Per namespace, the registered model versions and the artifact paths
    /// they are served from: gc never deletes those files.
    registered: HashMap<Namespace, Vec<(String, ArtifactPath)>>,
}

impl Gc<'_> {
    /// The registered version (`name/version`) whose files lie inside, or
    /// contain, the artifacts at `uri`, if any.
    fn registered_at(&self, namespace: &Namespace, uri: &str) -> Option<&str> {
        let path = ArtifactPath::from_proxied_uri(uri)?;
        self.registered
            .get(namespace)?
            .iter()
            .find_map(|(label, location)| {
                let (a, b) = (path.segments(), location.segments());
                (a.starts_with(b) || b.starts_with(a)).then_some(label.as_str())
            })
    }

    /// Reports and returns true when `uri` backs a registered model version.
    fn keep_registered(&mut self, namespace: &Namespace, what: &str, uri: &str) -> bool {
        let Some(label) = self.registered_at(namespace, uri).map(str::to_string) else {
            return false;
        };
        self.report.kept += 1;
        self.report.say(&format!(
            "kept: {namespace}: {what}: its artifacts back registered model version {label}; \
             delete that version first"
        ));
        true
    }

    /// Purges one directory; false (after reporting) when it failed.
    async fn purge(&mut self, namespace: &Namespace, path: &ArtifactPath, what: &str) -> bool {
        match self
            .artifacts
            .purge(namespace, path, self.report.dry_run)
            .await
        {
            Ok(count) => {
                self.report.objects += count;
                true
            }
            Err(error) => {
                self.report.errors += 1;
                self.report.say(&format!(
                    "error: {namespace}: {what}: deleting artifacts under '{path}' failed ({}); its rows are kept",
                    error.message
                ));
                false
            }
        }
    }

    /// Purges a run's own directory, or reports why its artifacts are left alone.
    async fn purge_run(&mut self, namespace: &Namespace, run: &GcRun) -> bool {
        match own_directory(&run.artifact_uri, &run.run_id) {
            Some(dir) => {
                self.purge(namespace, &dir, &format!("run {}", run.run_id))
                    .await
            }
            None => {
                self.report.skipped += 1;
                self.report.say(&format!(
                    "skipped: {namespace}: run {}: artifacts at '{}' are not in this server's artifact store; left alone",
                    run.run_id, run.artifact_uri
                ));
                true
            }
        }
    }

    async fn purge_model(&mut self, namespace: &Namespace, model: &GcLoggedModel) -> bool {
        match own_directory(&model.artifact_location, &model.model_id) {
            Some(dir) => {
                self.purge(namespace, &dir, &format!("logged model {}", model.model_id))
                    .await
            }
            None => {
                self.report.skipped += 1;
                self.report.say(&format!(
                    "skipped: {namespace}: logged model {}: artifacts at '{}' are not in this server's artifact store; left alone",
                    model.model_id, model.artifact_location
                ));
                true
            }
        }
    }

    async fn remove_run(&mut self, namespace: &Namespace, run: &GcRun) -> anyhow::Result<()> {
        if self.keep_registered(namespace, &format!("run {}", run.run_id), &run.artifact_uri) {
            return Ok(());
        }
        if !self.purge_run(namespace, run).await {
            return Ok(());
        }
        if self.report.dry_run {
            self.report.runs += 1;
            return Ok(());
        }
        let removed = self
            .store
            .hard_delete_run(namespace, &run.run_id)
            .await
            .map_err(api_error)
            .with_context(|| format!("removing run {}", run.run_id))?;
        if removed {
            self.report.runs += 1;
        } else {
            self.report.say(&format!(
                "kept: {namespace}: run {} is no longer deleted (restored meanwhile?)",
                run.run_id
            ));
        }
        Ok(())
    }

    async fn remove_experiment(
        &mut self,
        namespace: &Namespace,
        experiment: &GcExperiment,
        all: &[GcExperiment],
    ) -> anyhow::Result<()> {
        let id = experiment.experiment_id;
        let (runs, models) = self
            .store
            .experiment_contents(namespace, id)
            .await
            .map_err(api_error)
            .with_context(|| format!("listing experiment {id}"))?;
        // A registered version served from anything in the experiment keeps it whole.
        let backing = runs
            .iter()
            .map(|run| run.artifact_uri.as_str())
            .chain(models.iter().map(|model| model.artifact_location.as_str()))
            .chain(std::iter::once(experiment.artifact_location.as_str()))
            .find(|uri| self.registered_at(namespace, uri).is_some());
        if let Some(uri) = backing {
            let uri = uri.to_string();
            self.keep_registered(namespace, &format!("experiment {id}"), &uri);
            return Ok(());
        }
        let directory = experiment_directory(experiment, all);
        // What lies inside the experiment's directory goes with it (and is
        // counted once); anything else is purged on its own.
        let inside = |uri: &str| {
            directory.as_ref().is_ok_and(|dir| {
                ArtifactPath::from_proxied_uri(uri)
                    .is_some_and(|path| path.segments().starts_with(dir.segments()))
            })
        };
        let mut purged = true;
        for run in runs.iter().filter(|run| !inside(&run.artifact_uri)) {
            purged &= self.purge_run(namespace, run).await;
        }
        for model in models
            .iter()
            .filter(|model| !inside(&model.artifact_location))
        {
            purged &= self.purge_model(namespace, model).await;
        }
        match &directory {
            Ok(dir) => {
                purged &= self
                    .purge(namespace, dir, &format!("experiment {id}"))
                    .await;
            }
            Err(reason) => {
                self.report.skipped += 1;
                self.report.say(&format!(
                    "skipped: {namespace}: experiment {id}: its directory is left alone because {reason}; \
                     only its runs' and models' own directories were cleaned"
                ));
            }
        }
        if !purged {
            return Ok(());
        }
        let count = |items: usize| u64::try_from(items).unwrap_or(u64::MAX);
        if self.report.dry_run {
            self.report.experiments += 1;
            self.report.runs += count(runs.len());
            self.report.models += count(models.len());
            return Ok(());
        }
        let removed = self
            .store
            .hard_delete_experiment(namespace, id)
            .await
            .map_err(api_error)
            .with_context(|| format!("removing experiment {id}"))?;
        if removed {
            self.report.experiments += 1;
            self.report.runs += count(runs.len());
            self.report.models += count(models.len());
        } else {
            self.report.say(&format!(
                "kept: {namespace}: experiment {id} is no longer deleted (restored meanwhile?)"
            ));
        }
        Ok(())
    }
}

/// The artifact paths registered model versions are served from, per
/// namespace (none when the registry's tables are not in this database).
async fn registered_locations(
    db: &quiver_common::db::Database,
    namespaces: &[Namespace],
) -> anyhow::Result<HashMap<Namespace, Vec<(String, ArtifactPath)>>> {
    let migrated = db
        .migration_version("registry")
        .await
        .context("reading the migration table")?;
    let mut out = HashMap::new();
    if migrated.is_none() {
        return Ok(out);
    }
    let registry = quiver_registry::store::SqlRegistryStore::new(db.clone());
    for namespace in namespaces {
        let versions = registry
            .version_locations(namespace)
            .await
            .map_err(api_error)
            .context("listing registered model versions")?;
        let paths = versions
            .into_iter()
            .filter_map(|(name, version, location)| {
                ArtifactPath::from_proxied_uri(&location)
                    .map(|path| (format!("{name}/{version}"), path))
            })
            .collect();
        out.insert(namespace.clone(), paths);
    }
    Ok(out)
}

fn api_error(error: quiver_common::ApiError) -> anyhow::Error {
    anyhow::anyhow!(error.message)
}

/// Builds the plan for every selected namespace; with explicit ids, refuses
/// (before anything is removed) any id that is missing, not deleted or too
/// recently deleted.
async fn plan(
    store: &SqlTrackingStore,
    args: &GcArgs,
    namespaces: &[Namespace],
    threshold: i64,
    now: i64,
) -> anyhow::Result<(Vec<Plan>, Vec<String>)> {
    let explicit = !args.run_ids.is_empty() || !args.experiment_ids.is_empty();
    let mut plans = Vec::new();
    let mut notes = Vec::new();
    for namespace in namespaces {
        let all_experiments = store
            .gc_experiments(namespace)
            .await
            .map_err(api_error)
            .with_context(|| format!("listing experiments of namespace {namespace}"))?;
        let default_deleted = all_experiments
            .iter()
            .any(|e| e.experiment_id == DEFAULT_EXPERIMENT_ID && e.lifecycle == Lifecycle::Deleted);
        if default_deleted && !explicit {
            notes.push(format!(
                "note: {namespace}: the default experiment 0 is deleted but is never removed; only its deleted runs are"
            ));
        }
        let (runs, experiments) = if explicit {
            (Vec::new(), Vec::new())
        } else {
            let candidates = store
                .list_gc_candidates(namespace, threshold)
                .await
                .map_err(api_error)
                .with_context(|| format!("listing gc candidates of namespace {namespace}"))?;
            (candidates.runs, candidates.experiments)
        };
        plans.push(Plan {
            namespace: namespace.clone(),
            runs,
            experiments,
            all_experiments,
        });
    }
    if !explicit {
        return Ok((plans, notes));
    }

    let mut refusals = Vec::new();
    for run_id in args
        .run_ids
        .iter()
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())
    {
        let mut found = None;
        for plan in &plans {
            if let Some(run) = store
                .gc_run(&plan.namespace, run_id)
                .await
                .map_err(api_error)
                .with_context(|| format!("looking up run {run_id}"))?
            {
                found = Some((plan.namespace.clone(), run));
                break;
            }
        }
        let Some((namespace, run)) = found else {
            refusals.push(format!(
                "run {run_id} does not exist in the selected namespaces"
            ));
            continue;
        };
        if run.lifecycle != Lifecycle::Deleted {
            refusals.push(format!(
                "run {run_id} ({namespace}) is not deleted; only deleted runs can be removed"
            ));
        } else if run.deleted_time.unwrap_or(0) > threshold {
            refusals.push(format!(
                "run {run_id} ({namespace}) was deleted {} ago, more recently than --older-than {}",
                age(now - run.deleted_time.unwrap_or(0)),
                args.older_than
            ));
        } else if let Some(plan) = plans.iter_mut().find(|p| p.namespace == namespace)
            && !plan.runs.iter().any(|r| r.run_id == run.run_id)
        {
            plan.runs.push(run);
        }
    }
    for raw in args
        .experiment_ids
        .iter()
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())
    {
        // --experiment-ids needs --namespace, so there is exactly one plan.
        let Some(plan) = plans.first_mut() else {
            break;
        };
        let Ok(id) = raw.parse::<i64>() else {
            refusals.push(format!("experiment id '{raw}' is not a number"));
            continue;
        };
        let namespace = plan.namespace.clone();
        if id == DEFAULT_EXPERIMENT_ID {
            refusals.push(format!(
                "experiment 0 ({namespace}) is the default experiment and is never removed \
                 (its deleted runs are removed by a gc without --experiment-ids, or with --run-ids)"
            ));
            continue;
        }
        let Some(experiment) = plan
            .all_experiments
            .iter()
            .find(|e| e.experiment_id == id)
            .cloned()
        else {
            refusals.push(format!(
                "experiment {id} does not exist in namespace {namespace}"
            ));
            continue;
        };
        if experiment.lifecycle != Lifecycle::Deleted {
            refusals.push(format!(
                "experiment {id} ({namespace}) is not deleted; only deleted experiments can be removed"
            ));
        } else if experiment.last_update_time > threshold {
            refusals.push(format!(
                "experiment {id} ({namespace}) was deleted {} ago, more recently than --older-than {}",
                age(now - experiment.last_update_time),
                args.older_than
            ));
        } else if !plan.experiments.iter().any(|e| e.experiment_id == id) {
            plan.experiments.push(experiment);
        }
    }
    if !refusals.is_empty() {
        bail!("nothing was removed:\n  {}", refusals.join("\n  "));
    }
    Ok((plans, notes))
}

/// `quiver gc`.
pub async fn gc(mut config: Config, args: GcArgs) -> anyhow::Result<()> {
    let older_than = parse_older_than(&args.older_than)?;
    if let Some(root) = &args.artifacts_root {
        config.artifacts.root = root.clone();
    }
    let namespace = args
        .namespace
        .as_deref()
        .map(Namespace::parse)
        .transpose()
        .map_err(api_error)?;
    if !args.experiment_ids.is_empty() && namespace.is_none() {
        bail!("--experiment-ids needs --namespace (experiment ids are per namespace)");
    }
    if config.database.url.is_empty() && !config.server.data_dir.join("quiver.db").exists() {
        bail!(
            "no database at {}: point gc at the server's --data-dir, --database-url or --config",
            config.server.data_dir.join("quiver.db").display()
        );
    }
    let db = crate::roles::open_database(&config).await?;
    let store = SqlTrackingStore::new(db.clone());
    let root = quiver_artifacts::storage::open(&config.artifacts_root(), &config.artifacts.options)
        .map_err(|error| anyhow::anyhow!(error))
        .context("opening the artifact root")?;
    let artifacts = ArtifactsService::new(root);

    let all = store
        .list_namespaces()
        .await
        .map_err(api_error)
        .context("listing namespaces (is the database migrated? see `quiver migrate`)")?;
    let namespaces = match namespace {
        Some(name) if all.contains(&name) => vec![name],
        Some(name) => bail!("namespace '{name}' does not exist"),
        None => all,
    };
    let now = quiver_common::time::now_millis();
    let threshold = now.saturating_sub(older_than);
    let (plans, notes) = plan(&store, &args, &namespaces, threshold, now).await?;

    let registered = registered_locations(&db, &namespaces).await?;
    let mut gc = Gc {
        store: &store,
        artifacts: &artifacts,
        registered,
        report: Report {
            dry_run: args.dry_run,
            ..Report::default()
        },
    };
    if args.dry_run {
        gc.report.say("dry run: nothing is removed");
    }
    for note in &notes {
        gc.report.say(note);
    }
    for plan in &plans {
        let removed_with_experiment = |run: &GcRun| {
            plan.experiments
                .iter()
                .any(|e| e.experiment_id == run.experiment_id)
        };
        for run in plan.runs.iter().filter(|run| !removed_with_experiment(run)) {
            gc.remove_run(&plan.namespace, run).await?;
        }
        for experiment in &plan.experiments {
            gc.remove_experiment(&plan.namespace, experiment, &plan.all_experiments)
                .await?;
        }
    }
    gc.report.say(&gc.report.summary());
    db.close().await;
    if gc.report.errors > 0 {
        bail!(
            "{} artifact deletions failed; their rows were kept (re-run gc to retry)",
            gc.report.errors
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than_takes_mlflows_format() {
        assert_eq!(parse_older_than("0s").unwrap(), 0);
        assert_eq!(parse_older_than("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_older_than("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(
            parse_older_than("1d2h3m4s").unwrap(),
            86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000
        );
        assert_eq!(parse_older_than("1.5h").unwrap(), 5_400_000);
        assert_eq!(parse_older_than("1d30s").unwrap(), 86_400_000 + 30_000);
        for bad in [
            "",
            "30",
            "d",
            "1x",
            "1h1d",
            "1d1d",
            "-1d",
            "1.2.3s",
            "1e3s",
            "99999999999999d",
            "1 d",
        ] {
            assert!(parse_older_than(bad).is_err(), "{bad:?}");
        }
    }

    fn experiment(id: i64, location: &str) -> GcExperiment {
        GcExperiment {
            experiment_id: id,
            lifecycle: Lifecycle::Deleted,
            last_update_time: 0,
            artifact_location: location.to_string(),
        }
    }

    #[test]
    fn runs_and_models_own_only_their_directory() {
        let run = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            own_directory(&format!("mlflow-artifacts:/1/{run}/artifacts"), run)
                .unwrap()
                .to_string(),
            format!("1/{run}")
        );
        assert_eq!(
            own_directory("mlflow-artifacts:/1/models/m-1/artifacts", "m-1")
                .unwrap()
                .to_string(),
            "1/models/m-1"
        );
        for uri in [
            format!("s3://bucket/1/{run}/artifacts"),
            format!("mlflow-artifacts://other/1/{run}/artifacts"),
            format!("mlflow-artifacts:/1/{run}"),
            "mlflow-artifacts:/1/other-run/artifacts".to_string(),
            "mlflow-artifacts:/artifacts".to_string(),
            format!("mlflow-artifacts:/1/../{run}/artifacts"),
        ] {
            assert!(own_directory(&uri, run).is_none(), "{uri}");
        }
    }

    #[test]
    fn an_experiment_directory_is_purged_only_when_it_is_its_own() {
        let one = experiment(1, "mlflow-artifacts:/1");
        let ten = experiment(10, "mlflow-artifacts:/10");
        assert_eq!(
            experiment_directory(&one, &[one.clone(), ten.clone()])
                .unwrap()
                .to_string(),
            "1"
        );
        let custom = experiment(2, "s3://bucket/team");
        assert!(experiment_directory(&custom, std::slice::from_ref(&custom)).is_err());
        let elsewhere = experiment(3, "mlflow-artifacts:/shared");
        assert!(experiment_directory(&elsewhere, std::slice::from_ref(&elsewhere)).is_err());
        let inside = experiment(4, "mlflow-artifacts:/1/nested");
        assert!(experiment_directory(&one, &[one.clone(), inside]).is_err());
    }
}
