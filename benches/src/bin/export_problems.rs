//! Writes every problem of the standard suite (`deq_problems::standard_suite`, the same
//! constructors and seeds) as an instance file (`deq_benches::instances`) plus
//! `index.json`, the problem set that `run_ours` and the peer harness
//! (`benches/peers/run.py`) both read. Each file is read back and checked to give a
//! map bit-identical to the in-memory problem.
//!
//! ```text
//! cargo run --release -p deq-benches --bin export_problems -- DIR
//! ```

use std::path::{Path, PathBuf};

use deq_benches::instances::{FileProblem, bit_identical};
use deq_problems::suite::{H_CS, LINEAR_SEED, TANH_RHOS, TANH_UNIFORM_RHOS, tanh_seed, tanh_uniform_seed};
use deq_problems::{FixedPointProblem, HEquation, LinearMap, TanhLayer};
use serde_json::json;

/// One problem to build: its family, parameter, and constructor.
type Job = (String, f64, Box<dyn Fn() -> (Box<dyn FixedPointProblem + Send>, FileProblem) + Send + Sync>);

fn jobs() -> Vec<Job> {
    let mut out: Vec<Job> = Vec::new();
    for d in [16, 64, 256, 1024] {
        for (k, &rho) in TANH_RHOS.iter().enumerate() {
            out.push((
                "tanh".into(),
                rho,
                Box::new(move || {
                    let p = TanhLayer::new(d, rho, tanh_seed(d, k));
                    let f = FileProblem::from_tanh(&p);
                    (Box::new(p), f)
                }),
            ));
        }
    }
    for c in H_CS {
        out.push((
            "hequation".into(),
            c,
            Box::new(move || {
                let p = HEquation::new(500, c);
                let f = FileProblem::from_hequation(&p);
                (Box::new(p), f)
            }),
        ));
    }
    out.push((
        "linear".into(),
        1.5,
        Box::new(|| {
            let p = LinearMap::new(64, 1.5, LINEAR_SEED);
            let f = FileProblem::from_linear(&p);
            (Box::new(p), f)
        }),
    ));
    for d in [64, 256, 1024] {
        for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
            out.push((
                "tanh-uniform".into(),
                rho,
                Box::new(move || {
                    let p = TanhLayer::uniform_spectrum(d, rho, tanh_uniform_seed(d, k));
                    let f = FileProblem::from_tanh(&p);
                    (Box::new(p), f)
                }),
            ));
        }
    }
    out
}

/// Builds, writes and checks problem `i`; returns its index entry.
fn export(dir: &Path, i: usize, (family, param, build): &Job) -> serde_json::Value {
    let (p, fp) = build();
    let file = format!("p{i:02}.safetensors");
    let path = dir.join(&file);
    fp.save(&path).unwrap_or_else(|e| panic!("{e}"));
    let back = FileProblem::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(bit_identical(p.as_ref(), &back), "{}: the file's map differs from the problem's", p.name());
    json!({
        "index": i,
        "name": p.name(),
        "family": family,
        "param": param,
        "kind": back.kind.name(),
        "d": back.d,
        "file": file,
    })
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "benches/results/problems".into()));
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let jobs = jobs();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<serde_json::Value>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let entry = export(&dir, i, job);
                    eprintln!("wrote {}", entry["name"]);
                    *slots[i].lock().expect("slot") = Some(entry);
                }
            });
        }
    });
    let index: Vec<_> = slots.into_iter().filter_map(|m| m.into_inner().expect("slot")).collect();
    let text = serde_json::to_string_pretty(&index).expect("encode the index");
    std::fs::write(dir.join("index.json"), text).expect("write index.json");
    println!("{} instances in {}", index.len(), dir.display());
}
