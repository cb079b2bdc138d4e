use super::*;

const MS: Duration = Duration::from_millis(1);

/// Pushes `n` messages `0..n`, one a millisecond from time 0, the `delivery` way, taking what
/// is due before each push and then the rest: the messages with the time each was taken, and
/// the queue's stats.
fn run(
    spec: &str,
    seed: u64,
    n: u32,
    delivery: Delivery,
) -> (Vec<(u32, Duration)>, ConditionerStats) {
    let spec: ConditionerSpec = spec.parse().expect("spec");
    let mut q = DelayQueue::new(spec, seed);
    let mut got = Vec::new();
    for i in 0..n {
        while let Some(m) = q.pop_due(MS * i) {
            got.push((m, MS * i));
        }
        q.push(MS * i, i, delivery);
    }
    while let Some(due) = q.next_due() {
        got.push((q.pop_due(due).expect("due"), due));
    }
    (got, q.stats())
}

/// The messages of [`run`], without their times.
fn order(got: &[(u32, Duration)]) -> Vec<u32> {
    got.iter().map(|(m, _)| *m).collect()
}

/// Pairs `(earlier, later)` of sent order delivered the other way round.
fn inversions(got: &[u32]) -> usize {
    got.windows(2).filter(|w| w[0] > w[1]).count()
}

#[test]
fn parses_and_prints_specs() {
    let check = |text: &str, printed: &str| {
        let spec: ConditionerSpec = text.parse().expect(text);
        assert_eq!(spec.to_string(), printed, "{text}");
        assert_eq!(printed.parse::<ConditionerSpec>().expect(printed), spec);
    };
    check("latency=100ms,jitter=20ms", "latency=100ms,jitter=20ms");
    check("latency=0.05s", "latency=50ms,jitter=0ms");
    check("latency=10ms,loss=5%", "latency=10ms,jitter=0ms,loss=5%");
    check("loss=0.02", "latency=0ms,jitter=0ms,loss=2%");
    check(
        "latency=100ms,jitter=20ms,loss=2%,duplicate=1%,reorder=1.5%",
        "latency=100ms,jitter=20ms,loss=2%,duplicate=1%,reorder=1.5%",
    );
    let spec: ConditionerSpec = "duplicate=1%,reorder=0.5".parse().unwrap();
    assert_eq!((spec.duplicate_per_10k, spec.reorder_per_10k), (100, 5_000));
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let check = |text: &str, says: &str| {
        let e = text.parse::<ConditionerSpec>().expect_err(text);
        assert!(e.contains(says), "{text}: {e}");
    };
    check("latency=fast", "is not a duration like 100ms");
    check("latency=-5ms", "must be between 0 and 60s");
    check("loss=80%", "loss \"80%\" must be between 0% and 50%");
    check("duplicate=60%", "duplicate \"60%\" must be between 0% and 50%");
    check("reorder=51%", "reorder \"51%\" must be between 0% and 50%");
    check("loss=lots", "loss \"lots\" is not a rate like 5% or 0.05");
    check(
        "drop=1%",
        "unknown conditioner setting \"drop\" (latency, jitter, loss, duplicate, reorder)",
    );
    check("latency", "expected key=value");
}

#[test]
fn reports_keep_their_json_shape_and_old_ones_still_parse() {
    let spec: ConditionerSpec = "latency=25ms,jitter=5ms,loss=5%,duplicate=1%".parse().unwrap();
    assert_eq!(
        serde_json::to_string(&spec).unwrap(),
        r#"{"latency_ms":25.0,"jitter_ms":5.0,"loss_percent":5.0,"duplicate_percent":1.0,"reorder_percent":0.0}"#
    );
    // Reports written before loss, then duplicate and reorder, existed.
    let old: ConditionerSpec =
        serde_json::from_str(r#"{"latency_ms":25.0,"jitter_ms":5.0,"loss_percent":5.0}"#).unwrap();
    assert_eq!(old.to_string(), "latency=25ms,jitter=5ms,loss=5%");
    let older: ConditionerSpec =
        serde_json::from_str(r#"{"latency_ms":50.0,"jitter_ms":10.0}"#).unwrap();
    assert_eq!(older.to_string(), "latency=50ms,jitter=10ms");
}

#[test]
fn the_same_seed_gives_the_same_deliveries() {
    let spec = "latency=20ms,jitter=30ms,loss=10%,duplicate=10%,reorder=10%";
    for delivery in [Delivery::Ordered, Delivery::Datagram] {
        let a = run(spec, 42, 500, delivery);
        assert_eq!(a, run(spec, 42, 500, delivery), "{delivery:?}");
        assert_ne!(a.0, run(spec, 43, 500, delivery).0, "{delivery:?}");
        if delivery == Delivery::Datagram {
            assert_ne!(order(&a.0), (0..500).collect::<Vec<_>>());
        }
    }
}

#[test]
fn ordered_messages_are_never_lost_duplicated_or_reordered() {
    let (got, stats) = run(
        "latency=10ms,jitter=50ms,loss=20%,duplicate=50%,reorder=50%",
        9,
        2_000,
        Delivery::Ordered,
    );
    assert_eq!(order(&got), (0..2_000).collect::<Vec<_>>());
    assert_eq!((stats.lost, stats.duplicated, stats.reordered, stats.dropped), (0, 0, 0, 0));
    // About a fifth were "lost" and came a retransmission late instead.
    assert!((300..500).contains(&stats.retransmitted), "{stats:?}");
}

#[test]
fn a_retransmitted_ordered_message_holds_what_follows() {
    let spec: ConditionerSpec = "latency=10ms,loss=50%".parse().unwrap();
    let mut q = DelayQueue::new(spec, 1);
    let mut t = Duration::ZERO;
    while q.stats().retransmitted == 0 {
        q.push(t, 0u32, Delivery::Ordered);
        t += MS;
    }
    let retransmitted_at = t - MS;
    // Ordered messages sent after it wait for it; a datagram does not.
    q.push(t, 1, Delivery::Ordered);
    loop {
        let before = q.stats().lost;
        q.push(t, 2, Delivery::Datagram);
        if q.stats().lost == before {
            break;
        }
    }
    let mut got = Vec::new();
    while let Some(i) = q.pop_due(t + 11 * MS) {
        got.push(i);
    }
    assert!(got.contains(&2), "the datagram waited: {got:?}");
    assert!(!got.contains(&1), "an ordered message overtook a retransmission: {got:?}");
    assert_eq!(q.next_due(), Some(retransmitted_at + 10 * MS + spec.retransmit()));
}

#[test]
fn datagram_loss_is_near_its_rate_and_the_rest_arrive_on_time_in_order() {
    let (got, stats) = run("latency=10ms,loss=2%", 3, 20_000, Delivery::Datagram);
    assert_eq!(got.len() as u64 + stats.lost, 20_000);
    // 2 % of 20,000 is 400, with a standard deviation of about 20.
    assert!((320..480).contains(&stats.lost), "{stats:?}");
    assert_eq!(inversions(&order(&got)), 0);
    assert!(got.iter().all(|&(m, at)| at == MS * (m + 10)), "all on time");
    assert_eq!((stats.retransmitted, stats.duplicated, stats.reordered), (0, 0, 0));
}

#[test]
fn datagrams_are_duplicated_near_their_rate() {
    let (got, stats) = run("latency=10ms,jitter=5ms,duplicate=5%", 5, 20_000, Delivery::Datagram);
    assert!((850..1_150).contains(&stats.duplicated), "{stats:?}");
    assert_eq!(got.len() as u64, 20_000 + stats.duplicated);
    let mut seen = vec![0u32; 20_000];
    for (i, _) in got {
        seen[i as usize] += 1;
    }
    assert_eq!(seen.iter().filter(|&&n| n == 2).count() as u64, stats.duplicated);
    assert!(seen.iter().all(|&n| n == 1 || n == 2));
}

#[test]
fn reordered_datagrams_arrive_after_later_ones() {
    // No jitter: only the reordering changes the order.
    let (got, stats) = run("latency=10ms,reorder=5%", 7, 20_000, Delivery::Datagram);
    assert!((850..1_150).contains(&stats.reordered), "{stats:?}");
    assert_eq!(got.len(), 20_000, "nothing lost or duplicated");
    let got = order(&got);
    assert!(inversions(&got) > 0);
    // Each held message is overtaken by the ones sent during its hold (50 ms, 50 messages).
    let first_late = got.windows(2).find(|w| w[0] > w[1]).map(|w| w[1]).unwrap();
    let at = got.iter().position(|&i| i == first_late).unwrap();
    let overtaken_by = got[..at].iter().filter(|&&i| i > first_late).count();
    assert!(overtaken_by >= 40, "{first_late} overtaken by {overtaken_by}");
}

#[test]
fn a_reordered_datagram_is_overtaken_even_with_no_latency() {
    let spec: ConditionerSpec = "reorder=50%".parse().unwrap();
    let mut q = DelayQueue::new(spec, 11);
    let mut i = 0u32;
    while q.stats().reordered == 0 {
        q.push(MS * i, i, Delivery::Datagram);
        i += 1;
    }
    let held = i - 1;
    // The next one not held itself overtakes it.
    let later = loop {
        let before = q.stats().reordered;
        q.push(MS * i, i, Delivery::Datagram);
        i += 1;
        if q.stats().reordered == before {
            break i - 1;
        }
    };
    let mut got = Vec::new();
    while let Some(m) = q.pop_due(MS * (i + 100)) {
        got.push(m);
    }
    let pos = |m: u32| got.iter().position(|&g| g == m).unwrap();
    assert!(pos(later) < pos(held), "{held} held, {later} later: {got:?}");
}

#[test]
fn the_queue_holds_at_most_its_bound_and_drops_the_newest() {
    let spec: ConditionerSpec = "latency=1s".parse().unwrap();
    for delivery in [Delivery::Ordered, Delivery::Datagram] {
        let mut q = DelayQueue::new(spec, 2);
        for i in 0..3_000u32 {
            q.push(Duration::ZERO, i, delivery);
        }
        assert_eq!(q.len(), MAX_DELAYED_MESSAGES);
        assert_eq!(q.stats().dropped, 3_000 - MAX_DELAYED_MESSAGES as u64, "{delivery:?}");
        let mut got = Vec::new();
        while let Some(i) = q.pop_due(Duration::from_secs(2)) {
            got.push(i);
        }
        assert_eq!(got, (0..MAX_DELAYED_MESSAGES as u32).collect::<Vec<_>>(), "{delivery:?}");
    }
    // Duplicate copies count against the bound too.
    let spec: ConditionerSpec = "latency=1s,duplicate=50%".parse().unwrap();
    let mut q = DelayQueue::new(spec, 2);
    for i in 0..3_000u32 {
        q.push(Duration::ZERO, i, Delivery::Datagram);
        assert!(q.len() <= MAX_DELAYED_MESSAGES);
    }
    let s = q.stats();
    assert!(s.duplicated > 300 && s.dropped > 1_900, "{s:?}");
}
