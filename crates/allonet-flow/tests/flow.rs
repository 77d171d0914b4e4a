//! Propagation conserves every unit; bad graphs are refused by name.

use allonet_core::{InputError, Table};
use allonet_flow::graph::{from_edge_table, from_fraction_edges, set_pinch, GraphError, Network, Node, Rule};
use allonet_flow::model::parse_model;
use allonet_flow::propagate::{propagate, propagate_fast, split_running, PropagateOptions};
use allonet_flow::sim::simulate;
use proptest::prelude::*;
use std::path::PathBuf;

fn no_tables(_: &str) -> Result<Table, InputError> {
    Err(InputError::file("-", "no tables in this test"))
}

#[test]
fn drips_running_totals_lose_no_unit() {
    // three receivers of a third each: naive per-receiver flooring loses a unit, running totals do not
    let receivers = [(0u32, 333_333u32), (1, 333_333), (2, 333_334)];
    let mut out = Vec::new();
    let kept = split_running(100, &receivers, &mut out);
    let parts: Vec<u128> = out.iter().map(|p| p.1).collect();
    assert_eq!(parts, vec![33, 33, 34]);
    assert_eq!(kept, 0);
    let naive: u128 = receivers.iter().map(|r| 100 * r.1 as u128 / 1_000_000).sum();
    assert_eq!(naive, 99, "per-receiver flooring would lose a unit");
}

proptest! {
    #[test]
    fn split_running_always_adds_up(amount in 0u128..u128::MAX / 2, weights in proptest::collection::vec(0u32..200_000, 1..8)) {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        prop_assume!(total <= 1_000_000);
        let receivers: Vec<(u32, u32)> = weights.iter().enumerate().map(|(i, &w)| (i as u32, w)).collect();
        let mut out = Vec::new();
        let kept = split_running(amount, &receivers, &mut out);
        prop_assert_eq!(out.iter().map(|p| p.1).sum::<u128>() + kept, amount);
    }

    #[test]
    fn propagation_conserves_on_random_graphs_with_cycles(
        n in 2usize..25,
        edges in proptest::collection::vec((0usize..25, 0usize..25, 1u32..400_000), 1..80),
        inject in proptest::collection::vec((0usize..25, 1u64..1_000_000_000_000), 1..5),
        pinch in 0u32..100_000,
        shares_node in any::<bool>(),
    ) {
        let mut nodes: Vec<Node> = (0..n).map(|i| Node { id: format!("n{i}"), rule: Rule::Keep }).collect();
        let mut out: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n];
        for (a, b, w) in edges {
            let (a, b) = (a % n, b % n);
            let used: u32 = out[a].iter().map(|r| r.1).sum();
            if used + w <= 1_000_000 { out[a].push((b as u32, w)); }
        }
        for (i, r) in out.into_iter().enumerate() {
            if !r.is_empty() { nodes[i].rule = Rule::Splits { receivers: r }; }
        }
        if shares_node {
            nodes[0].rule = Rule::Shares { mechanism: "test".into(), receivers: (0..n as u32).map(|i| (i, 1.0 + i as f64)).collect() };
        }
        let mut net = Network { nodes, pinch: None };
        set_pinch(&mut net, &format!("n{}", n - 1), pinch).unwrap();
        net.validate().unwrap();
        let inj: Vec<(u32, u128)> = inject.iter().map(|&(v, a)| ((v % n) as u32, a as u128)).collect();
        let o = PropagateOptions { max_hops: 300, ..Default::default() };
        let p = propagate(&net, &inj, &o);
        prop_assert_eq!(p.accounted(), p.injected);
        if let Some(f) = propagate_fast(&net, &inj, 300, 0) {
            // the fast path (flat arrays, threads) gives exactly the same outcome
            prop_assert!(!shares_node);
            prop_assert_eq!(&f.kept, &p.kept);
            prop_assert_eq!(&f.in_flight, &p.in_flight);
            prop_assert_eq!(&f.received, &p.received);
            prop_assert_eq!(f.hops, p.hops);
        }
        for v in 0..n {
            prop_assert_eq!(p.received[v], p.kept[v] + p.passed[v] + p.in_flight[v]);
        }
    }
}

#[test]
fn hand_worked_three_node_cycle() {
    // A → B → C → A, each passing on half and keeping half; 1,000 units injected at A.
    let toml = r#"
        [[node]]
        id = "A"
        rule = "splits"
        receivers = { B = 500000 }
        [[node]]
        id = "B"
        rule = "splits"
        receivers = { C = 500000 }
        [[node]]
        id = "C"
        rule = "splits"
        receivers = { A = 500000 }
    "#;
    let m = parse_model("cycle.toml", toml, &no_tables).unwrap();
    let p = propagate(&m.network, &[(0, 1000)], &PropagateOptions::default());
    // A: 1000 → keeps 500; B: 500 → 250; C: 250 → 125; A: 125 → sends ⌊62.5⌋ = 62, keeps 63;
    // B: 62 → 31; C: 31 → sends 15 keeps 16; A: 15 → sends 7 keeps 8; B: 7 → sends 3 keeps 4;
    // C: 3 → sends 1 keeps 2; A: 1 → sends 0 keeps 1.
    assert_eq!(p.kept, vec![500 + 63 + 8 + 1, 250 + 31 + 4, 125 + 16 + 2]);
    assert_eq!(p.hops, 10);
    assert!(p.converged);
    assert_eq!(p.in_flight, vec![0, 0, 0]);
}

#[test]
fn deep_funding_graph_conserves_a_million_units() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/deepfunding/repo_parent_weight_graph.csv");
    let net = from_edge_table(&Table::read(&path).unwrap(), None, None).unwrap();
    assert_eq!(net.nodes.len(), 5025);
    let eth = net.index()["ethereum"];
    let p = propagate(&net, &[(eth, 1_000_000)], &PropagateOptions { trace: true, ..Default::default() });
    assert!(p.converged);
    assert_eq!(p.kept.iter().sum::<u128>() + p.in_flight.iter().sum::<u128>(), 1_000_000);
    assert_eq!(p.in_flight.iter().sum::<u128>(), 0);
    // every unit that moved is in the trace
    let moved: u128 = p.trace.iter().map(|t| t.amount).sum();
    assert_eq!(moved, p.passed.iter().sum::<u128>());
    // weights out of every parent sum to one: the root keeps nothing
    assert_eq!(p.kept[eth as usize], 0);
    let f = propagate_fast(&net, &[(eth, 1_000_000)], 10_000, 0).unwrap();
    assert_eq!(f.kept, p.kept);
}

#[test]
fn bad_graphs_are_refused_by_name() {
    let over = r#"
        [[node]]
        id = "dao"
        rule = "splits"
        receivers = { a = 700000, b = 400000 }
        [[node]]
        id = "a"
        [[node]]
        id = "b"
    "#;
    let e = parse_model("m.toml", over, &no_tables).err().unwrap().to_string();
    assert!(e.contains("node `dao`") && e.contains("over 1,000,000"), "{e}");

    let unknown = r#"
        [[node]]
        id = "dao"
        rule = "splits"
        receivers = { ghost = 1000 }
    "#;
    let e = parse_model("m.toml", unknown, &no_tables).err().unwrap().to_string();
    assert!(e.contains("node `dao`") && e.contains("`ghost` is not a node"), "{e}");

    let mut many = String::from("[[node]]\nid = \"dao\"\nrule = \"splits\"\nreceivers = { ");
    many.push_str(&(0..201).map(|i| format!("r{i} = 1000")).collect::<Vec<_>>().join(", "));
    many.push_str(" }\n");
    for i in 0..201 {
        many.push_str(&format!("[[node]]\nid = \"r{i}\"\n"));
    }
    let e = parse_model("m.toml", &many, &no_tables).err().unwrap().to_string();
    assert!(e.contains("node `dao`") && e.contains("201 splits receivers"), "{e}");

    let t = Table::from_bytes("g.csv", b"repo,parent,weight\nx,p,0.5\ny,p,-0.1\n").unwrap();
    let e = from_edge_table(&t, None, None).err().unwrap().to_string();
    assert_eq!(e, "g.csv:3: column `weight`: weight -0.1 is negative (edge p → y)");

    let t = Table::from_bytes("g.csv", b"repo,parent,weight\nx,p,0.7\ny,p,0.6\n").unwrap();
    let e = from_edge_table(&t, None, None).err().unwrap();
    assert!(matches!(e, GraphError::Node { ref node, .. } if node == "p"), "{e}");

    let e = parse_model("m.toml", "[[node]]\nid = \"a\"\nrule = \"magic\"\n", &no_tables).err().unwrap().to_string();
    assert!(e.contains("unknown rule `magic`"), "{e}");
    let e = parse_model("m.toml", "[[node]]\nid = \"a\"\ncolour = 3\n", &no_tables).err().unwrap().to_string();
    assert!(e.starts_with("m.toml:"), "{e}");
    let _ = from_fraction_edges;
}

#[test]
fn simulation_is_seeded_and_sweeps_the_pinch() {
    let toml = r#"
        [[node]]
        id = "treasury"
        rule = "splits"
        receivers = { pool = 600000, retro = 300000 }
        [[node]]
        id = "pool"
        rule = "shares"
        scores = { p1 = 3.0, p2 = 1.0 }
        [[node]]
        id = "retro"
        rule = "splits"
        receivers = { p2 = 500000, p1 = 400000 }
        [[node]]
        id = "p1"
        [[node]]
        id = "p2"
        [[node]]
        id = "guild"
        [pinch]
        target = "guild"
        ppm = 0
        [simulation]
        steps = 20
        runs = 50
        seed = 7
        inject = [{ node = "treasury", median = 1000000, sigma = 0.5 }]
        sweep = { pinch_ppm = [0, 50000] }
    "#;
    let m = parse_model("sim.toml", toml, &no_tables).unwrap();
    let spec = m.simulation.unwrap();
    let a = simulate(&m.network, &spec);
    let b = simulate(&m.network, &spec);
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
    let guild = 5;
    assert_eq!(a[0].mean_kept[19][guild], 0.0);
    assert!(a[1].mean_kept[19][guild] > 0.0);
    // conservation of the means: kept + in flight = injected
    let total: f64 = a[1].mean_kept[19].iter().sum::<f64>() + a[1].mean_in_flight[19];
    assert!((total - a[1].mean_injected).abs() < 1e-6 * a[1].mean_injected);
}

#[test]
fn retro_and_vote_nodes_take_their_shares_from_the_mechanisms() {
    use allonet_flow::model::parse_model_with;
    let toml = r#"
        [[node]]
        id = "dao"
        rule = "splits"
        receivers = { retro = 500000, council = 500000 }
        [[node]]
        id = "retro"
        rule = "retro"
        votes = "votes.csv"
        quorum = 2
        [[node]]
        id = "council"
        rule = "vote"
        tally = "vote.json"
        [[node]]
        id = "x"
        [[node]]
        id = "y"
        [simulation]
        steps = 3
        runs = 4
        inject = [{ node = "dao", median = 1000 }]
        sweep = { inject_scale = [1.0, 2.0] }
    "#;
    let tables = |p: &str| -> Result<Table, InputError> {
        assert_eq!(p, "votes.csv");
        Table::from_bytes(p, b"voter,project,amount\na,x,2000\nb,x,3000\na,y,900\nb,y,1100\nc,z,5000\n")
    };
    let bytes = |p: &str| -> Result<Vec<u8>, InputError> {
        assert_eq!(p, "vote.json");
        Ok(br#"{"choices": ["x", "y"], "votes": [{"choice": {"1": 1}, "balance": 9}, {"choice": {"2": 1}, "balance": 1}]}"#.to_vec())
    };
    let m = parse_model_with("m.toml", toml, &tables, &bytes).unwrap();
    let idx = m.network.index();
    let p = propagate(&m.network, &[(idx["dao"], 1_000_000)], &PropagateOptions::default());
    // retro: medians x 2500, y 1000; z has one ballot (quorum 2): nothing. 500,000 split 2500:1000.
    // vote: Snapshot quadratic scores 9 : 1 of 500,000.
    let (x, y) = (p.kept[idx["x"] as usize], p.kept[idx["y"] as usize]);
    assert_eq!(x, 357_143 + 450_000);
    assert_eq!(y, 142_857 + 50_000);
    assert_eq!(p.kept[idx["z"] as usize], 0);
    let sim = simulate(&m.network, &m.simulation.unwrap());
    assert_eq!(sim.len(), 2);
    assert!((sim[1].mean_injected - 2.0 * sim[0].mean_injected).abs() < 1e-9);
}
