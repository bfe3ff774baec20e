//! The correction loop's decision (`store::policy::decide`) as a pure function: a property
//! test over any facts (each read answered or failed, any guard count) and any time, with no
//! store and no clock: a fix only when every read it needs answered and allowed it, never on
//! a failed read, and no read asked for that the decision did not need.

use std::cell::RefCell;

use hostler::store::depends::Reach;
use hostler::store::guard::FixGuard;
use hostler::store::policy::{Decision, Facts, Read, Rules, decide};
use proptest::prelude::*;

/// Answers given in advance, and the reads asked for, in order.
#[derive(Debug, Clone)]
struct Given {
    soft: bool,
    quorum: Option<Read<bool>>,
    reach: Read<Reach>,
    downtime: Read<bool>,
    acked: Read<bool>,
    fixes: Read<(i64, Option<i64>)>,
    asked: RefCell<Vec<&'static str>>,
}

impl Facts for Given {
    fn soft(&self) -> bool {
        self.asked.borrow_mut().push("soft");
        self.soft
    }
    fn quorum_fixer(&self) -> Option<Read<bool>> {
        self.asked.borrow_mut().push("quorum");
        self.quorum.clone()
    }
    fn reach(&self) -> Read<Reach> {
        self.asked.borrow_mut().push("reach");
        self.reach.clone()
    }
    fn in_downtime(&self) -> Read<bool> {
        self.asked.borrow_mut().push("downtime");
        self.downtime.clone()
    }
    fn acked(&self) -> Read<bool> {
        self.asked.borrow_mut().push("acked");
        self.acked.clone()
    }
    fn fixes(&self) -> Read<(i64, Option<i64>)> {
        self.asked.borrow_mut().push("fixes");
        self.fixes.clone()
    }
}

fn read<T: std::fmt::Debug + Clone + 'static>(
    ok: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Read<T>> {
    prop_oneof![
        4 => ok.prop_map(Ok),
        1 => Just(Err("injected".to_string())),
    ]
}

fn reach() -> impl Strategy<Value = Reach> {
    prop_oneof![
        3 => Just(Reach::Reachable),
        1 => Just(Reach::Unreachable { parent: "r1/ping".into() }),
        1 => Just(Reach::Pending { parents: vec![("r1".into(), "ping".into())] }),
    ]
}

fn given() -> impl Strategy<Value = Given> {
    (
        prop::bool::weighted(0.2),
        prop_oneof![
            2 => Just(None),
            1 => read(any::<bool>()).prop_map(Some),
        ],
        read(reach()),
        read(prop::bool::weighted(0.2)),
        read(any::<bool>()),
        read((0i64..6, prop::option::of(0i64..200_000))),
    )
        .prop_map(|(soft, quorum, reach, downtime, acked, fixes)| Given {
            soft,
            quorum,
            reach,
            downtime,
            acked,
            fixes,
            asked: RefCell::default(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_fix_runs_only_when_every_read_answered_and_allowed_it(
        g in given(),
        failing in prop::bool::weighted(0.8),
        has_fix in prop::bool::weighted(0.8),
        schedule_read in prop::bool::weighted(0.9),
        guard_max_fixes in 0i64..5,
        guard_backoff_ms in prop_oneof![Just(0i64), Just(30_000)],
        now in 100_000i64..300_000,
    ) {
        let rules = Rules { has_fix, guard_max_fixes, guard_backoff_ms };
        let given = if schedule_read { Ok(Some(rules)) } else { Err("injected".to_string()) };
        let d = decide(failing, given, &g, now);
        let asked = g.asked.borrow().clone();
        // The reads are asked in one order, each at most once, and only as far as needed.
        let order = ["soft", "quorum", "reach", "downtime", "acked", "fixes"];
        prop_assert!(asked.iter().zip(order).all(|(a, o)| *a == o), "{asked:?}");
        if !schedule_read {
            prop_assert!(matches!(d, Decision::Later { .. }), "{d:?}");
            prop_assert!(asked.is_empty());
            return Ok(());
        }
        if !failing {
            prop_assert_eq!(&d, &Decision::Record);
            prop_assert!(asked.is_empty(), "a passing result reads nothing: {asked:?}");
            return Ok(());
        }
        // A read that failed, among those asked: nothing decided on a guess.
        let failed = asked.iter().any(|a| match *a {
            "quorum" => matches!(g.quorum, Some(Err(_))),
            "reach" => g.reach.is_err(),
            "downtime" => g.downtime.is_err(),
            "acked" => g.acked.is_err(),
            "fixes" => g.fixes.is_err(),
            _ => false,
        });
        prop_assert_eq!(failed, matches!(d, Decision::Later { .. }), "{:?} after {:?}", d, asked);
        let may_fix = !g.soft
            && has_fix
            && matches!(g.quorum, None | Some(Ok(true)))
            && g.reach == Ok(Reach::Reachable)
            && g.downtime == Ok(false)
            && g.acked.is_ok()
            && g.fixes.is_ok();
        match &d {
            Decision::Fix { acked } => {
                prop_assert!(may_fix, "a fix on {g:?}");
                let (fixes, last) = g.fixes.clone().unwrap_or_default();
                let guard = hostler::store::guard::fix_guard(
                    guard_max_fixes, guard_backoff_ms, fixes, last, now);
                prop_assert_eq!(guard, FixGuard::Allowed);
                prop_assert_eq!(Ok(*acked), g.acked.clone());
            }
            Decision::Held { guard, acked, .. } => {
                prop_assert!(may_fix, "held where no fix could run: {g:?}");
                prop_assert_eq!(Ok(*acked), g.acked.clone());
                prop_assert_ne!(*guard, FixGuard::Allowed);
            }
            Decision::Soft => prop_assert!(g.soft),
            Decision::Behind(r) => prop_assert!(matches!(g.reach, Ok(ref x) if x == r && *x != Reach::Reachable)),
            Decision::Downtime => prop_assert_eq!(g.downtime.clone(), Ok(true)),
            Decision::Record => prop_assert!(!has_fix || g.quorum == Some(Ok(false))),
            Decision::Later { .. } => {}
        }
        if may_fix {
            prop_assert!(matches!(d, Decision::Fix { .. } | Decision::Held { .. }), "{d:?}");
        }
    }
}
