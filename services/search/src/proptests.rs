//! Property tests: the parser never panics, and rendering a valid AST then
//! parsing it gives the same AST back.

use proptest::prelude::*;
use proptest::sample::{Index, select};

use crate::*;

const NUMERIC: &[Op] = &[Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le];
const STRING: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike];
const NULLABLE: &[Op] = &[
    Op::Eq,
    Op::Ne,
    Op::Like,
    Op::ILike,
    Op::IsNull,
    Op::IsNotNull,
];
const LIST: &[Op] = &[Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

/// A family of valid comparisons: an entity, its keys (empty: any key) and
/// the comparators it accepts.
struct Slot {
    entity: Entity,
    keys: &'static [&'static str],
    ops: &'static [Op],
}

const fn slot(entity: Entity, keys: &'static [&'static str], ops: &'static [Op]) -> Slot {
    Slot { entity, keys, ops }
}

fn filter_slots(target: Target) -> Vec<Slot> {
    use Entity::*;
    match target {
        Target::Runs => vec![
            slot(Metric, &[], NUMERIC),
            slot(Param, &[], NULLABLE),
            slot(Tag, &[], NULLABLE),
            slot(Attribute, &["run_id"], LIST),
            slot(
                Attribute,
                &["run_name", "status", "user_id", "artifact_uri"],
                STRING,
            ),
            slot(Attribute, &["start_time", "end_time"], NUMERIC),
            slot(Dataset, &["name", "digest", "context"], LIST),
        ],
        Target::Experiments => vec![
            slot(Tag, &[], NULLABLE),
            slot(Attribute, &["name", "experiment_id"], STRING),
            slot(Attribute, &["creation_time", "last_update_time"], NUMERIC),
        ],
        Target::RegisteredModels => vec![slot(Tag, &[], STRING), slot(Attribute, &["name"], LIST)],
        Target::ModelVersions => vec![
            slot(Tag, &[], STRING),
            slot(Attribute, &["name", "run_id"], LIST),
            slot(Attribute, &["source_path"], STRING),
            slot(Attribute, &["version_number"], NUMERIC),
        ],
        Target::LoggedModels => vec![
            slot(Metric, &[], NUMERIC),
            slot(Param, &[], STRING),
            slot(Tag, &[], STRING),
            slot(
                Attribute,
                &["name", "model_id", "model_type", "status", "source_run_id"],
                LIST,
            ),
            slot(
                Attribute,
                &["creation_timestamp", "last_updated_timestamp"],
                NUMERIC,
            ),
        ],
    }
}

fn order_slots(target: Target) -> Vec<Slot> {
    use Entity::*;
    match target {
        Target::Runs => vec![
            slot(Metric, &[], &[]),
            slot(Param, &[], &[]),
            slot(Tag, &[], &[]),
            slot(
                Attribute,
                &[
                    "artifact_uri",
                    "end_time",
                    "run_id",
                    "run_name",
                    "start_time",
                    "status",
                    "user_id",
                ],
                &[],
            ),
        ],
        Target::Experiments => vec![slot(
            Attribute,
            &["name", "experiment_id", "creation_time", "last_update_time"],
            &[],
        )],
        Target::RegisteredModels => vec![slot(Attribute, &["name", "last_updated_timestamp"], &[])],
        Target::ModelVersions => vec![slot(
            Attribute,
            &[
                "name",
                "version_number",
                "creation_timestamp",
                "last_updated_timestamp",
            ],
            &[],
        )],
        Target::LoggedModels => vec![
            slot(Metric, &[], &[]),
            slot(
                Attribute,
                &[
                    "name",
                    "model_id",
                    "model_type",
                    "status",
                    "source_run_id",
                    "creation_timestamp",
                    "last_updated_timestamp",
                ],
                &[],
            ),
        ],
    }
}

fn any_target() -> impl Strategy<Value = Target> {
    select(vec![
        Target::Runs,
        Target::Experiments,
        Target::RegisteredModels,
        Target::ModelVersions,
        Target::LoggedModels,
    ])
}

/// Any short string, including quotes, backticks, backslashes, control and
/// non-ASCII characters.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<char>(),
            2 => select(vec!['\'', '"', '`', '\\', ' ', '.', '%', '_', ',', '(', ')']),
            2 => prop::char::range('a', 'z'),
        ],
        0..max,
    )
    .prop_map(String::from_iter)
}

fn finite_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |n| n.is_finite()),
        any::<i64>().prop_map(|n| n as f64),
        (-1000i32..1000).prop_map(|n| f64::from(n) / 8.0),
    ]
}

fn pick_key(slot: &Slot, index: Index, free_key: String) -> String {
    if slot.keys.is_empty() {
        if free_key.is_empty() {
            "k".to_string()
        } else {
            free_key
        }
    } else {
        slot.keys[index.index(slot.keys.len())].to_string()
    }
}

fn comparison(target: Target) -> impl Strategy<Value = Comparison> {
    let slots = filter_slots(target);
    (
        any::<Index>(),
        any::<Index>(),
        any::<Index>(),
        any_text(24),
        finite_number(),
        any_text(24),
        prop::collection::vec(any_text(12), 1..4),
    )
        .prop_map(move |(slot_i, key_i, op_i, free_key, number, text, list)| {
            let slot = &slots[slot_i.index(slots.len())];
            let op = slot.ops[op_i.index(slot.ops.len())];
            let value = match op {
                Op::IsNull | Op::IsNotNull => Value::Null,
                Op::In | Op::NotIn => Value::List(list),
                _ if slot.ops == NUMERIC => Value::Number(number),
                _ => Value::String(text),
            };
            Comparison {
                entity: slot.entity,
                key: pick_key(slot, key_i, free_key),
                op,
                value,
            }
        })
}

fn filter_case() -> impl Strategy<Value = (Target, Vec<Comparison>)> {
    any_target().prop_flat_map(|target| {
        (
            Just(target),
            prop::collection::vec(comparison(target), 1..8),
        )
    })
}

fn order_case() -> impl Strategy<Value = (Target, OrderBy)> {
    any_target().prop_flat_map(|target| {
        let slots = order_slots(target);
        (any::<Index>(), any::<Index>(), any_text(24), any::<bool>()).prop_map(
            move |(slot_i, key_i, free_key, ascending)| {
                let slot = &slots[slot_i.index(slots.len())];
                let order = OrderBy {
                    entity: slot.entity,
                    key: pick_key(slot, key_i, free_key),
                    ascending,
                };
                (target, order)
            },
        )
    })
}

/// Fragments of the grammar, glued together at random to reach the parser's
/// deeper error paths.
const FRAGMENTS: &[&str] = &[
    "metrics.a",
    "params.`x y`",
    "tags.\"k\"",
    "`tags`",
    ".",
    "attributes.run_id",
    "run_id",
    "start_time",
    "created",
    "`run name`",
    "datasets.name",
    "foo.bar",
    "AND",
    "and",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "ASC",
    "DESC",
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "<>",
    "==",
    "(",
    ")",
    ",",
    "'v'",
    "\"v\"",
    "'",
    "\"",
    "`",
    "\\",
    "1",
    "-1.5e3",
    "1e",
    "e-",
    "+",
    "-",
    " ",
    "\t",
    "é",
    "\u{0}",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((select(FRAGMENTS), any::<bool>()), 0..40).prop_map(|parts| {
        let mut out = String::new();
        for (fragment, spaced) in parts {
            out.push_str(fragment);
            if spaced {
                out.push(' ');
            }
        }
        out
    })
}

fn check_error_is_reasonable(result: Result<(), SearchError>) -> Result<(), TestCaseError> {
    if let Err(err) = result {
        prop_assert!(!err.0.is_empty());
        prop_assert!(
            err.0.chars().count() < 1_000,
            "error too long: {}",
            err.0.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn filter_never_panics_on_arbitrary_strings(input in any::<String>(), target in any_target()) {
        check_error_is_reasonable(parse_filter(&input, target).map(|_| ()))?;
        check_error_is_reasonable(parse_order_by(&input, target).map(|_| ()))?;
    }

    #[test]
    fn filter_never_panics_on_grammar_tokens(input in token_soup(), target in any_target()) {
        check_error_is_reasonable(parse_filter(&input, target).map(|_| ()))?;
        check_error_is_reasonable(parse_order_by(&input, target).map(|_| ()))?;
    }

    #[test]
    fn rendered_filters_parse_back((target, clauses) in filter_case()) {
        let rendered = render_filter(&clauses);
        let parsed = parse_filter(&rendered, target);
        prop_assert_eq!(parsed, Ok(clauses), "rendered: {}", rendered);
    }

    #[test]
    fn rendered_order_by_parses_back((target, order) in order_case()) {
        let rendered = order.to_string();
        prop_assert_eq!(parse_order_by(&rendered, target), Ok(order.clone()));
        // Lowercase direction, and ASC left implicit, parse the same way.
        let direction = if order.ascending { " ASC" } else { " DESC" };
        let identifier = rendered.strip_suffix(direction).unwrap_or(&rendered);
        let lower = format!("{identifier}{}", direction.to_lowercase());
        prop_assert_eq!(parse_order_by(&lower, target), Ok(order.clone()));
        if order.ascending {
            prop_assert_eq!(parse_order_by(identifier, target), Ok(order));
        }
    }
}
