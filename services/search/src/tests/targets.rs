//! Unit tests for the per-target rules: experiments, registered models,
//! model versions, logged models and order_by.

use super::*;

// ---------- experiments ----------

#[test]
fn experiments_filters() {
    let clauses = ok(
        "tags.team = 'ml' and name ILIKE '%PROBE%'",
        Target::Experiments,
    );
    assert_eq!(clauses[0], cmp(Entity::Tag, "team", Op::Eq, s("ml")));
    assert_eq!(
        clauses[1],
        cmp(Entity::Attribute, "name", Op::ILike, s("%PROBE%"))
    );
    for key in ["name", "experiment_id"] {
        for op in ["= 'x'", "!= 'x'", "LIKE 'x'", "ILIKE 'x'"] {
            ok(&format!("{key} {op}"), Target::Experiments);
        }
        assert!(
            err(&format!("{key} IN ('x')"), Target::Experiments)
                .starts_with("Invalid comparator 'IN'")
        );
    }
    for key in ["creation_time", "last_update_time"] {
        let c = one(&format!("attributes.{key} >= 1"), Target::Experiments);
        assert_eq!(c.key, key, "experiment keys keep their names");
        assert!(err(&format!("{key} = 'x'"), Target::Experiments).contains("numeric attribute"));
    }
    for op in ["IS NULL", "IS NOT NULL", "LIKE 'x'"] {
        ok(&format!("tags.t {op}"), Target::Experiments);
    }
    assert!(
        err("start_time > 1", Target::Experiments).contains("Invalid attribute key 'start_time'")
    );
}

// ---------- registered models ----------

#[test]
fn registered_model_filters() {
    for op in [
        "= 'x'",
        "!= 'x'",
        "LIKE 'x'",
        "ILIKE 'x'",
        "IN ('x')",
        "NOT IN ('x','y')",
    ] {
        ok(&format!("name {op}"), Target::RegisteredModels);
    }
    for op in ["= 'x'", "!= 'x'", "LIKE 'x'", "ILIKE 'x'"] {
        ok(&format!("tags.t {op}"), Target::RegisteredModels);
    }
    for op in ["IS NULL", "IS NOT NULL", "IN ('x')"] {
        assert!(
            err(&format!("tags.t {op}"), Target::RegisteredModels)
                .starts_with("Invalid comparator")
        );
    }
    assert!(err("name > 'x'", Target::RegisteredModels).starts_with("Invalid comparator '>'"));
    assert!(err("run_id = 'x'", Target::RegisteredModels).contains("Valid keys are ['name']"));
}

// ---------- model versions ----------

#[test]
fn model_version_filters() {
    assert_eq!(
        ok(
            "name='probe-model' and run_id='3728384b90b34c06929d2457e47181fe'",
            Target::ModelVersions
        )
        .len(),
        2
    );
    assert_eq!(
        ok(
            "name = 'probe-model' AND version_number > 1",
            Target::ModelVersions
        )[1],
        cmp(
            Entity::Attribute,
            "version_number",
            Op::Gt,
            Value::Number(1.0)
        )
    );
    for key in ["name", "run_id"] {
        ok(&format!("{key} IN ('a','b')"), Target::ModelVersions);
        ok(&format!("{key} NOT IN ('a')"), Target::ModelVersions);
    }
    ok("source_path LIKE 'runs:/%'", Target::ModelVersions);
    assert_eq!(
        err("source_path IN ('a')", Target::ModelVersions),
        "Only ['name', 'run_id'] attributes support comparison with a list of quoted string values."
    );
    assert!(
        err("version_number = '1'", Target::ModelVersions)
            .contains("numeric attribute: version_number")
    );
    assert!(err("tags.t IS NULL", Target::ModelVersions).starts_with("Invalid comparator"));
}

// ---------- logged models ----------

#[test]
fn logged_model_filters() {
    let clauses = ok("source_run_id='abc' AND name='model'", Target::LoggedModels);
    assert_eq!(
        clauses[0],
        cmp(Entity::Attribute, "source_run_id", Op::Eq, s("abc"))
    );
    for key in ["name", "model_id", "model_type", "status", "source_run_id"] {
        ok(&format!("{key} LIKE 'x%'"), Target::LoggedModels);
        ok(&format!("{key} IN ('x')"), Target::LoggedModels);
    }
    for (alias, canonical) in [
        ("creation_timestamp", "creation_timestamp"),
        ("creation_time", "creation_timestamp"),
        ("last_updated_timestamp", "last_updated_timestamp"),
        ("last_updated_time", "last_updated_timestamp"),
    ] {
        assert_eq!(
            one(&format!("{alias} > 1"), Target::LoggedModels).key,
            canonical
        );
    }
    ok("name = 'lm1' AND params.C = '1.0'", Target::LoggedModels);
    ok(
        "metrics.acc >= 0.9 and tags.t ILIKE 'x'",
        Target::LoggedModels,
    );
    assert!(err("params.C IS NULL", Target::LoggedModels).starts_with("Invalid comparator"));
    assert!(err("metrics.acc LIKE 'x'", Target::LoggedModels).starts_with("Invalid comparator"));
}

// ---------- order_by ----------

#[test]
fn order_by_directions() {
    assert_eq!(
        order("metrics.acc DESC", Target::Runs),
        OrderBy {
            entity: Entity::Metric,
            key: "acc".into(),
            ascending: false
        }
    );
    assert!(order("attributes.start_time ASC", Target::Runs).ascending);
    assert!(order("start_time", Target::Runs).ascending);
    assert!(!order("tags.x desc", Target::Runs).ascending);
    assert_eq!(order("params.`a b`", Target::Runs).key, "a b");
    assert_eq!(order("  name   Asc  ", Target::Experiments).key, "name");
}

#[test]
fn order_by_runs_attributes() {
    for key in [
        "artifact_uri",
        "end_time",
        "run_id",
        "run_name",
        "start_time",
        "status",
        "user_id",
    ] {
        assert_eq!(order(key, Target::Runs).key, key);
    }
    assert_eq!(order("created DESC", Target::Runs).key, "start_time");
    assert_eq!(order("Created", Target::Runs).key, "start_time");
    assert!(order_err("foo", Target::Runs).starts_with("Invalid attribute key 'foo'"));
    assert_eq!(
        order_err("foo.bar", Target::Runs),
        "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute']"
    );
    order_err("datasets.name", Target::Runs);
}

#[test]
fn order_by_other_targets() {
    for key in ["name", "experiment_id", "creation_time", "last_update_time"] {
        assert_eq!(order(&format!("{key} DESC"), Target::Experiments).key, key);
    }
    order_err("tags.x", Target::Experiments);
    assert_eq!(order("name", Target::RegisteredModels).key, "name");
    assert_eq!(
        order("timestamp DESC", Target::RegisteredModels).key,
        "last_updated_timestamp"
    );
    assert_eq!(
        order("last_updated_timestamp", Target::RegisteredModels).key,
        "last_updated_timestamp"
    );
    assert_eq!(
        order_err("creation_timestamp", Target::RegisteredModels),
        "Invalid order by key 'creation_timestamp' specified. Valid keys are ['name', 'timestamp', 'last_updated_timestamp']"
    );
    for key in [
        "name",
        "version_number",
        "creation_timestamp",
        "last_updated_timestamp",
    ] {
        assert_eq!(order(key, Target::ModelVersions).key, key);
    }
    order_err("run_id", Target::ModelVersions);
    assert_eq!(
        order("metrics.acc DESC", Target::LoggedModels).entity,
        Entity::Metric
    );
    assert_eq!(
        order("creation_time", Target::LoggedModels).key,
        "creation_timestamp"
    );
    order_err("params.x", Target::LoggedModels);
}

#[test]
fn order_by_syntax_errors() {
    assert!(order_err("", Target::Runs).contains("Could not be parsed"));
    assert!(order_err("start_time sideways", Target::Runs).contains("Invalid ordering key"));
    assert!(order_err("start_time ASC DESC", Target::Runs).contains("Could not be parsed"));
    assert!(order_err("start_time, end_time", Target::Runs).contains("','"));
    assert!(order_err("'start_time'", Target::Runs).contains("Could not be parsed"));
}
