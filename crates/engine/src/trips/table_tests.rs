//! [`super::table::TripTable`] against a model of plain maps: random trips put and removed
//! over a few travellers (so that lists grow, shrink back to one trip and go), and over
//! many (so that the tables grow past several sizes), checked at every step by id, by
//! traveller in start order, and by the trip holding an instant.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::table::{Entry, TripTable};

#[derive(Debug, Clone)]
enum Step {
    Put {
        id: u16,
        traveller: u8,
        start: i64,
        title: bool,
    },
    Remove {
        id: u16,
    },
    Clear,
}

/// Steps over `ids` trip ids and `travellers` travellers, clearing with weight `clear`.
fn steps(ids: u16, travellers: u8, clear: u32) -> impl Strategy<Value = Step> {
    let put = (0..ids, 0..travellers, 0i64..40, any::<bool>()).prop_map(
        |(id, traveller, start, title)| Step::Put {
            id,
            traveller,
            start,
            title,
        },
    );
    let remove = (0..ids).prop_map(|id| Step::Remove { id });
    if clear == 0 {
        prop_oneof![6 => put, 3 => remove].boxed()
    } else {
        prop_oneof![6 => put, 3 => remove, clear => Just(Step::Clear)].boxed()
    }
}

/// The model: trips by id as (traveller, start, title); a traveller's starts are distinct
/// (the table is given windows that never overlap: each trip lasts one instant).
type Model = BTreeMap<String, (String, i64, String)>;

fn check(table: &TripTable<u8>, model: &Model, travellers: u8) {
    assert_eq!(table.len(), model.len());
    for (id, (traveller, start, title)) in model {
        let entry = table.get(id).expect("kept");
        assert_eq!(
            (
                entry.id(),
                entry.traveller(),
                entry.title(),
                entry.started_at
            ),
            (id.as_str(), traveller.as_str(), title.as_str(), *start)
        );
    }
    for t in 0..travellers {
        let traveller = format!("traveller-{t}");
        let mut expected: Vec<(i64, &str)> = model
            .iter()
            .filter(|(_, (who, _, _))| *who == traveller)
            .map(|(id, (_, start, _))| (*start, id.as_str()))
            .collect();
        expected.sort_unstable();
        let listed: Vec<(i64, &str)> = table
            .of_traveller(&traveller)
            .map(|e| (e.started_at, e.id()))
            .collect();
        assert_eq!(listed, expected, "{traveller}");
    }
    // One batch of reports, every traveller's (and one with no trips) interleaved, as
    // many as span several lookup groups: each finds the trip holding its instant.
    let names: Vec<String> = (0..=travellers).map(|t| format!("traveller-{t}")).collect();
    let reports: Vec<(&str, i64)> = (-1..42)
        .flat_map(|ts| names.iter().map(move |t| (t.as_str(), ts)))
        .collect();
    let mut got: Vec<Option<&str>> = vec![None; reports.len()];
    table.holding_each(reports.iter().copied(), |i, e| {
        assert!(got[i].is_none(), "each report is told once");
        got[i] = Some(e.id());
    });
    let at: BTreeMap<(&str, i64), &str> = model
        .iter()
        .map(|(id, (who, start, _))| ((who.as_str(), *start), id.as_str()))
        .collect();
    for (report, got) in reports.iter().zip(got) {
        assert_eq!(got, at.get(report).copied(), "{report:?}");
    }
    assert_eq!(table.iter().count(), model.len());
}

fn run(steps: Vec<Step>, travellers: u8) {
    let mut table: TripTable<u8> = TripTable::default();
    let mut model = Model::new();
    for step in steps {
        match step {
            Step::Put {
                id,
                traveller,
                start,
                title,
            } => {
                let id = format!("trip-{id}");
                let traveller = format!("traveller-{traveller}");
                let clash = model
                    .iter()
                    .any(|(other, (who, s, _))| *other != id && *who == traveller && *s == start);
                let other_traveller = model.get(&id).is_some_and(|(who, _, _)| *who != traveller);
                if clash || other_traveller {
                    continue;
                }
                let title = if title {
                    format!("title of {id}")
                } else {
                    String::new()
                };
                table.remove(&id);
                table.insert(Entry::new(
                    &id,
                    &traveller,
                    &title,
                    start,
                    Some(start),
                    None,
                ));
                model.insert(id, (traveller, start, title));
            }
            Step::Remove { id } => {
                let id = format!("trip-{id}");
                let removed = table.remove(&id).map(|e| e.id().to_owned());
                assert_eq!(removed, model.remove(&id).map(|_| id));
            }
            Step::Clear => {
                table.clear();
                model.clear();
            }
        }
        check(&table, &model, travellers);
    }
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn the_table_finds_what_the_model_holds(steps in proptest::collection::vec(steps(24, 4, 1), 1..80)) {
        run(steps, 4);
    }
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(16))]

    /// Many trips and travellers, never cleared: the tables grow past several sizes, and
    /// lists of one traveller's trips grow and shrink among many others.
    #[test]
    fn the_table_grows_and_shrinks_with_the_model(steps in proptest::collection::vec(steps(600, 40, 0), 200..1_200)) {
        run(steps, 40);
    }
}
