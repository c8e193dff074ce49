//! Unit tests for the public API: every grammar and validation rule, valid
//! and invalid.

use crate::*;

mod targets;

fn ok(filter: &str, target: Target) -> Vec<Comparison> {
    match parse_filter(filter, target) {
        Ok(clauses) => clauses,
        Err(err) => panic!("{filter:?} should parse for {target:?}: {err}"),
    }
}

fn one(filter: &str, target: Target) -> Comparison {
    let mut clauses = ok(filter, target);
    assert_eq!(clauses.len(), 1, "{filter}");
    clauses.remove(0)
}

fn err(filter: &str, target: Target) -> String {
    match parse_filter(filter, target) {
        Ok(clauses) => panic!("{filter:?} should fail for {target:?}, got {clauses:?}"),
        Err(err) => err.0,
    }
}

fn cmp(entity: Entity, key: &str, op: Op, value: Value) -> Comparison {
    Comparison {
        entity,
        key: key.to_string(),
        op,
        value,
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn order(clause: &str, target: Target) -> OrderBy {
    match parse_order_by(clause, target) {
        Ok(order) => order,
        Err(err) => panic!("{clause:?} should parse for {target:?}: {err}"),
    }
}

fn order_err(clause: &str, target: Target) -> String {
    match parse_order_by(clause, target) {
        Ok(order) => panic!("{clause:?} should fail for {target:?}, got {order:?}"),
        Err(err) => err.0,
    }
}

const ALL_TARGETS: [Target; 5] = [
    Target::Runs,
    Target::Experiments,
    Target::RegisteredModels,
    Target::ModelVersions,
    Target::LoggedModels,
];

// ---------- general syntax ----------

#[test]
fn empty_and_blank_filters_have_no_clauses() {
    for target in ALL_TARGETS {
        assert_eq!(ok("", target), vec![]);
        assert_eq!(ok("  \t\n ", target), vec![]);
    }
}

#[test]
fn parses_the_recorded_search_runs_filter() {
    let clauses = ok(
        "metrics.acc > 0.5 and params.depth = '3' and tags.phase = 'train' and attributes.status = 'RUNNING'",
        Target::Runs,
    );
    assert_eq!(
        clauses,
        vec![
            cmp(Entity::Metric, "acc", Op::Gt, Value::Number(0.5)),
            cmp(Entity::Param, "depth", Op::Eq, s("3")),
            cmp(Entity::Tag, "phase", Op::Eq, s("train")),
            cmp(Entity::Attribute, "status", Op::Eq, s("RUNNING")),
        ]
    );
}

#[test]
fn and_is_case_insensitive() {
    assert_eq!(
        ok(
            "run_id = 'a' AnD run_id = 'b' and run_id='c' AND run_id = 'd'",
            Target::Runs
        )
        .len(),
        4
    );
}

#[test]
fn or_is_rejected_with_mlflow_message() {
    assert_eq!(
        err("metrics.acc > 1 OR metrics.acc < 0", Target::Runs),
        "Invalid clause(s) in filter string: 'OR'"
    );
    assert_eq!(
        err("name = 'a' or name = 'b'", Target::Experiments),
        "Invalid clause(s) in filter string: 'or'"
    );
}

#[test]
fn grouping_parentheses_are_rejected() {
    assert!(err("(metrics.a > 1)", Target::Runs).contains("Parentheses"));
    assert!(err("metrics.a > 1 AND (metrics.b > 1)", Target::Runs).contains("Parentheses"));
}

#[test]
fn dangling_and_or_missing_pieces_are_rejected() {
    for bad in [
        "AND metrics.a > 1",
        "metrics.a > 1 AND",
        "metrics.a > 1 AND AND metrics.b > 1",
        "metrics.a",
        "metrics.a >",
        "metrics.a > 1 metrics.b > 2",
        "> 1",
    ] {
        err(bad, Target::Runs);
    }
}

// ---------- identifiers ----------

#[test]
fn entity_aliases_resolve() {
    for (alias, entity) in [
        ("metric", Entity::Metric),
        ("metrics", Entity::Metric),
        ("parameter", Entity::Param),
        ("parameters", Entity::Param),
        ("param", Entity::Param),
        ("params", Entity::Param),
        ("tag", Entity::Tag),
        ("tags", Entity::Tag),
    ] {
        let value = if entity == Entity::Metric { "1" } else { "'1'" };
        let c = one(&format!("{alias}.k = {value}"), Target::Runs);
        assert_eq!((c.entity, c.key.as_str()), (entity, "k"), "{alias}");
    }
    for alias in ["attribute", "attributes", "attr", "run"] {
        let c = one(&format!("{alias}.status = 'x'"), Target::Runs);
        assert_eq!(c.entity, Entity::Attribute, "{alias}");
    }
    for alias in ["dataset", "datasets"] {
        let c = one(&format!("{alias}.name = 'x'"), Target::Runs);
        assert_eq!(c.entity, Entity::Dataset, "{alias}");
    }
}

#[test]
fn no_dot_means_attribute() {
    assert_eq!(
        one("status = 'RUNNING'", Target::Runs).entity,
        Entity::Attribute
    );
}

#[test]
fn only_the_first_dot_splits() {
    let c = one("tags.mlflow.parentRunId = 'abc'", Target::Runs);
    assert_eq!(
        (c.entity, c.key.as_str()),
        (Entity::Tag, "mlflow.parentRunId")
    );
}

#[test]
fn quoted_keys_and_entities() {
    let clauses = ok(
        "params.`depth` = '3' and tags.\"phase\" != 'x'",
        Target::Runs,
    );
    assert_eq!(clauses[0].key, "depth");
    assert_eq!(clauses[1], cmp(Entity::Tag, "phase", Op::Ne, s("x")));
    assert_eq!(one("params.`a b` = 'x'", Target::Runs).key, "a b");
    assert_eq!(
        one("tags.\"mlflow.source.type\" = 'LOCAL'", Target::Runs).key,
        "mlflow.source.type"
    );
    assert_eq!(one("metrics.`val-loss` < 1", Target::Runs).key, "val-loss");
    let c = one("`params`.`a b` = 'x'", Target::Runs);
    assert_eq!((c.entity, c.key.as_str()), (Entity::Param, "a b"));
    assert_eq!(
        one("`metrics`.acc < 1", Target::Runs).entity,
        Entity::Metric
    );
    assert_eq!(one("tags.`we``ird` = 'x'", Target::Runs).key, "we`ird");
}

#[test]
fn invalid_entity_uses_mlflow_message() {
    assert_eq!(
        err("foo.bar = 1", Target::Runs),
        "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
    );
    assert_eq!(
        err("foo.bar = 1", Target::Experiments),
        "Invalid entity type 'foo'. Valid values are ['tag', 'attribute']"
    );
    // Entity names are case-sensitive, as in MLflow.
    assert!(err("Metrics.acc > 1", Target::Runs).contains("Invalid entity type 'Metrics'"));
}

#[test]
fn entities_are_restricted_per_target() {
    for target in [
        Target::Experiments,
        Target::RegisteredModels,
        Target::ModelVersions,
    ] {
        assert!(err("metrics.a > 1", target).contains("Invalid entity type 'metrics'"));
        assert!(err("params.a = 'x'", target).contains("Invalid entity type 'params'"));
        assert!(err("datasets.name = 'x'", target).contains("Invalid entity type 'datasets'"));
    }
    assert!(err("datasets.name = 'x'", Target::LoggedModels).contains("Invalid entity type"));
}

#[test]
fn malformed_identifiers_are_rejected() {
    for bad in [
        "metrics. > 1",
        "tags.`` = 'x'",
        ".acc > 1",
        "tags.a-b = 'x'",
        "tags.a.`b` = 'x'",
    ] {
        err(bad, Target::Runs);
    }
}

// ---------- values ----------

#[test]
fn string_values_accept_both_quotes_and_escapes() {
    assert_eq!(one("tags.a = \"x y\"", Target::Runs).value, s("x y"));
    assert_eq!(one(r"tags.a = 'it\'s'", Target::Runs).value, s("it's"));
    assert_eq!(one("tags.a = 'it''s'", Target::Runs).value, s("it's"));
    assert_eq!(
        one(r#"tags.a = "say \"hi\"""#, Target::Runs).value,
        s("say \"hi\"")
    );
    assert_eq!(one(r"tags.a LIKE '50\%'", Target::Runs).value, s(r"50\%"));
    assert_eq!(one("tags.a = ''", Target::Runs).value, s(""));
}

#[test]
fn numbers_in_all_forms() {
    for (text, n) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("+3", 3.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("1e3", 1e3),
        ("-2.5E-3", -2.5e-3),
        ("1e+2", 100.0),
    ] {
        assert_eq!(
            one(&format!("metrics.m >= {text}"), Target::Runs).value,
            Value::Number(n),
            "{text}"
        );
    }
}

#[test]
fn unquoted_strings_are_rejected() {
    let msg = err("tags.a = abc", Target::Runs);
    assert!(
        msg.starts_with("Parameter value is either not quoted"),
        "{msg}"
    );
    assert!(msg.contains("abc"), "{msg}");
    assert!(err("status = `RUNNING`", Target::Runs).contains("not quoted"));
}

#[test]
fn metric_with_string_uses_mlflow_message() {
    assert_eq!(
        err("metrics.acc = 'x'", Target::Runs),
        "Expected numeric value type for metric. Found 'x'"
    );
    assert_eq!(
        err("metrics.acc = abc", Target::Runs),
        "Expected numeric value type for metric. Found abc"
    );
    assert_eq!(
        err("start_time > '5'", Target::Runs),
        "Expected numeric value type for numeric attribute: start_time. Found '5'"
    );
    assert!(err("metrics.acc > 1e999", Target::Runs).contains("Expected numeric value"));
}

#[test]
fn string_entities_reject_numbers() {
    assert!(
        err("params.a = 1", Target::Runs)
            .starts_with("Expected a quoted string value for parameter")
    );
    assert!(err("tags.a = 1", Target::Runs).starts_with("Expected a quoted string value for tag"));
    assert!(
        err("status = 1", Target::Runs)
            .starts_with("Expected a quoted string value for attributes")
    );
    assert!(
        err("datasets.name = 1", Target::Runs)
            .starts_with("Expected a quoted string value for dataset")
    );
}

#[test]
fn in_lists() {
    let c = one(
        "attributes.run_id IN ('3728384b90b34c06929d2457e47181fe', 'zzz')",
        Target::Runs,
    );
    assert_eq!(c.op, Op::In);
    assert_eq!(
        c.value,
        Value::List(vec![
            "3728384b90b34c06929d2457e47181fe".into(),
            "zzz".into()
        ])
    );
    assert_eq!(one("run_id NOT IN ('a')", Target::Runs).op, Op::NotIn);
    assert!(err("run_id IN ()", Target::Runs).contains("empty list"));
    assert!(err("run_id IN ('a', 1)", Target::Runs).contains("ill-formed list"));
    assert!(err("run_id IN 'a'", Target::Runs).contains("parenthesised list"));
    assert!(err("run_id = ('a')", Target::Runs).contains("only supported with IN"));
}

// ---------- runs comparators ----------

#[test]
fn runs_metric_comparators() {
    for op in ["=", "!=", ">", ">=", "<", "<="] {
        ok(&format!("metrics.m {op} 1"), Target::Runs);
    }
    for op in [
        "LIKE '1'",
        "ILIKE '1'",
        "IS NULL",
        "IS NOT NULL",
        "IN ('1')",
        "NOT IN ('1')",
    ] {
        let msg = err(&format!("metrics.m {op}"), Target::Runs);
        assert!(msg.starts_with("Invalid comparator '"), "{op}: {msg}");
    }
    assert_eq!(
        err("metrics.m LIKE '1'", Target::Runs),
        "Invalid comparator 'LIKE' not one of ['=', '!=', '>', '>=', '<', '<='] for metric 'm'"
    );
}

#[test]
fn runs_param_and_tag_comparators() {
    for entity in ["params", "tags"] {
        for op in [
            "= 'x'",
            "!= 'x'",
            "LIKE 'x%'",
            "ILIKE 'X%'",
            "IS NULL",
            "is not null",
        ] {
            ok(&format!("{entity}.k {op}"), Target::Runs);
        }
        for op in [
            "> 'x'",
            ">= 'x'",
            "< 'x'",
            "<= 'x'",
            "IN ('x')",
            "NOT IN ('x')",
        ] {
            assert!(
                err(&format!("{entity}.k {op}"), Target::Runs).starts_with("Invalid comparator"),
                "{entity} {op}"
            );
        }
    }
    assert_eq!(one("tags.k IS NULL", Target::Runs).value, Value::Null);
    assert_eq!(one("params.k IS NOT NULL", Target::Runs).op, Op::IsNotNull);
}

#[test]
fn runs_string_attributes() {
    for key in ["run_id", "run_name", "status", "user_id", "artifact_uri"] {
        for op in ["= 'x'", "!= 'x'", "LIKE 'x'", "ILIKE 'x'"] {
            assert_eq!(
                one(&format!("attributes.{key} {op}"), Target::Runs).key,
                key
            );
        }
        assert!(err(&format!("{key} > 'x'"), Target::Runs).starts_with("Invalid comparator '>'"));
        assert!(
            err(&format!("{key} IS NULL"), Target::Runs)
                .starts_with("Invalid comparator 'IS NULL'")
        );
    }
    for key in ["run_name", "status", "user_id", "artifact_uri"] {
        assert_eq!(
            err(&format!("{key} IN ('a')"), Target::Runs),
            "Only ['run_id'] attributes support comparison with a list of quoted string values."
        );
    }
}

#[test]
fn runs_attribute_aliases_normalise() {
    for alias in [
        "`run name`",
        "`Run name`",
        "\"Run Name\"",
        "attributes.`run name`",
    ] {
        assert_eq!(
            one(&format!("{alias} = 'x'"), Target::Runs).key,
            "run_name",
            "{alias}"
        );
    }
    for alias in ["created", "Created", "attributes.created"] {
        let c = one(&format!("{alias} > 5"), Target::Runs);
        assert_eq!(
            (c.key.as_str(), c.value),
            ("start_time", Value::Number(5.0))
        );
    }
}

#[test]
fn runs_numeric_attributes() {
    for key in ["start_time", "end_time"] {
        for op in ["=", "!=", ">", ">=", "<", "<="] {
            ok(&format!("{key} {op} 1700000000000"), Target::Runs);
        }
        assert!(
            err(&format!("{key} LIKE '1'"), Target::Runs).starts_with("Invalid comparator 'LIKE'")
        );
    }
}

#[test]
fn unknown_attribute_names_valid_keys() {
    let msg = err("foo = 'x'", Target::Runs);
    assert!(
        msg.starts_with("Invalid attribute key 'foo' specified. Valid keys are ['run_id'"),
        "{msg}"
    );
    assert!(msg.contains("'start_time'"));
    let msg = err("attributes.experiment_id = '1'", Target::Runs);
    assert!(
        msg.contains("Invalid attribute key 'experiment_id'"),
        "{msg}"
    );
}

#[test]
fn runs_datasets() {
    for key in ["name", "digest", "context"] {
        for op in [
            "= 'x'",
            "!= 'x'",
            "LIKE 'x'",
            "ILIKE 'x'",
            "IN ('x', 'y')",
            "NOT IN ('x')",
        ] {
            assert_eq!(one(&format!("datasets.{key} {op}"), Target::Runs).key, key);
        }
        assert!(
            err(&format!("datasets.{key} > 'x'"), Target::Runs).starts_with("Invalid comparator")
        );
        assert!(
            err(&format!("datasets.{key} IS NULL"), Target::Runs).starts_with("Invalid comparator")
        );
    }
    assert_eq!(
        err("datasets.source = 'x'", Target::Runs),
        "Invalid dataset key 'source' specified. Valid keys are ['name', 'digest', 'context']"
    );
    assert_eq!(
        ok(
            "datasets.name = 'iris' AND datasets.context = 'training'",
            Target::Runs
        )
        .len(),
        2
    );
}

// ---------- limits and robustness ----------

#[test]
fn long_filters_are_rejected() {
    let long = format!("tags.a = '{}'", "x".repeat(MAX_FILTER_LEN));
    assert!(err(&long, Target::Runs).contains("too long"));
    let at_limit = format!("tags.a = '{}'", "x".repeat(MAX_FILTER_LEN - 12));
    assert_eq!(at_limit.chars().count(), MAX_FILTER_LEN - 1);
    ok(&at_limit, Target::Runs);
    // Multi-byte characters count as one.
    let wide = format!("tags.a = '{}'", "é".repeat(MAX_FILTER_LEN - 12));
    ok(&wide, Target::Runs);
    assert!(order_err(&"a".repeat(MAX_FILTER_LEN + 1), Target::Runs).contains("too long"));
}

#[test]
fn clause_count_is_bounded() {
    let clauses = |n: usize| vec!["metrics.a > 1"; n].join(" AND ");
    assert_eq!(ok(&clauses(MAX_CLAUSES), Target::Runs).len(), MAX_CLAUSES);
    assert!(err(&clauses(MAX_CLAUSES + 1), Target::Runs).contains("too many clauses"));
}

#[test]
fn error_messages_truncate_huge_tokens() {
    let msg = err(&format!("tags.a = {}", "x".repeat(5000)), Target::Runs);
    assert!(msg.len() < 400, "{}", msg.len());
}

#[test]
fn pathological_inputs_fail_cleanly() {
    for bad in [
        "(((((((((((",
        "'",
        "\"",
        "`",
        "\\",
        "a IN (((",
        "a = 'x' AND",
        "IS NULL",
        "NOT",
        "\u{0}",
        "tags.a = 'x'\u{0}",
    ] {
        let _ = parse_filter(bad, Target::Runs);
        let _ = parse_order_by(bad, Target::Runs);
    }
    let nested = "(".repeat(MAX_FILTER_LEN);
    assert!(parse_filter(&nested, Target::Runs).is_err());
}

#[test]
fn display_renders_parseable_filters() {
    let clauses = vec![
        cmp(Entity::Metric, "val-loss", Op::Le, Value::Number(-1.5e-7)),
        cmp(Entity::Tag, "we`ird key", Op::Like, s("it's \\ 50%")),
        cmp(
            Entity::Attribute,
            "run_id",
            Op::NotIn,
            Value::List(vec!["a".into(), "b'".into()]),
        ),
        cmp(Entity::Param, "p", Op::IsNull, Value::Null),
    ];
    let rendered = render_filter(&clauses);
    assert_eq!(
        rendered,
        "metrics.`val-loss` <= -1.5e-7 AND tags.`we``ird key` LIKE 'it\\'s \\\\ 50%' AND \
         attributes.`run_id` NOT IN ('a', 'b\\'') AND params.`p` IS NULL"
    );
    assert_eq!(ok(&rendered, Target::Runs), clauses);
    let order_by = OrderBy {
        entity: Entity::Metric,
        key: "a b".into(),
        ascending: false,
    };
    assert_eq!(order_by.to_string(), "metrics.`a b` DESC");
}

#[test]
fn search_error_displays_its_message() {
    let e = SearchError::new("boom");
    assert_eq!(e.to_string(), "boom");
    assert_eq!(e.message(), "boom");
}
