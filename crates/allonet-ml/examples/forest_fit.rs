//! Times one forest fit on a numeric CSV (last column is the target): the inner loop for tuning the tree
//! grower without building the CLI.
//!
//! `cargo run --release -p allonet-ml --example forest_fit -- TRAIN.csv TEST.csv [TREES] [THREADS]`

use allonet_ml::data::{r2, Dataset};
use allonet_ml::forest::{Forest, ForestParams};

fn read(path: &str) -> Dataset {
    let text = std::fs::read_to_string(path).expect("read CSV");
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split(',').map(str::to_string).collect();
    let d = header.len() - 1;
    let (mut x, mut y) = (vec![Vec::new(); d], Vec::new());
    for line in lines.filter(|l| !l.is_empty()) {
        for (i, v) in line.split(',').enumerate() {
            let v: f64 = v.parse().expect("number");
            if i < d {
                x[i].push(v)
            } else {
                y.push(v)
            }
        }
    }
    let labels = (0..y.len()).map(|i| i.to_string()).collect();
    Dataset { features: header[..d].to_vec(), target: header[d].clone(), x, y, labels }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (train, test) = (read(&args[1]), read(&args[2]));
    let trees = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(100);
    let threads = args.get(4).map(|s| s.parse().unwrap());
    let p = ForestParams { n_trees: trees, keep_leaf_members: false, oob: false, ..Default::default() };
    let t0 = std::time::Instant::now();
    let f = Forest::fit(&train, &p, threads).expect("fit");
    let fit = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let pred = f.predict(&test);
    let predict = t1.elapsed().as_secs_f64();
    let nodes: usize = f.trees.iter().map(|t| t.len()).sum();
    println!(
        "fit {fit:.3} s · predict {predict:.3} s · R² {:.5} · {:.0} nodes/tree · digest {}",
        r2(&test.y, &pred),
        nodes as f64 / trees as f64,
        if std::env::var_os("DIGEST").is_some() { allonet_core::digest(&f.trees).to_string() } else { "-".into() }
    );
}
