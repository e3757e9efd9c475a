//! A property test of the `deq` command line: random subcommands with random flags,
//! sizes (zero, negative, huge, past `u64`, not numbers) and paths (fresh, missing
//! directory, an input, another output, a device, a directory). Whatever the mix:
//!
//! * the exit status is 0 or 2 (no panic, no abort, no signal);
//! * on 2, stderr is one line starting `deq: error: ` and no file has appeared or
//!   changed in the working directory (no output, no temporary file);
//! * the inputs are never changed.
//!
//! Seeded (proptest's default deterministic runner), 48 cases, small problems only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The directory every case runs in: a small model and input, and nothing else.
fn workdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("deq-props-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_deq"))
        .current_dir(&d)
        .args(["demo", "--model-out", "m.st", "--input-out", "x.st", "--hidden", "12", "--input-width", "3"])
        .args(["--samples", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    d
}

/// Every file under `d` with its contents.
fn snapshot(d: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.insert(e.path(), std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    files
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("3".to_string()),
        Just("-1".to_string()),
        Just("1e-3".to_string()),
        Just("NaN".to_string()),
        Just("abc".to_string()),
        Just("1099511627776".to_string()),
        Just("1000000000000".to_string()),
        Just("18446744073709551616".to_string()),
        (0u32..40).prop_map(|v| v.to_string()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("out1".to_string()),
        Just("out2".to_string()),
        Just("sub/out3".to_string()),
        Just("nodir/out".to_string()),
        Just("m.st".to_string()),
        Just("x.st".to_string()),
        Just("./sub/../x.st".to_string()),
        Just("/dev/null".to_string()),
        Just("sub".to_string()),
        Just("".to_string()),
    ]
}

fn flag(sub: &'static str) -> BoxedStrategy<Vec<String>> {
    let numeric: &[&str] = match sub {
        "demo" => &["--hidden", "--input-width", "--samples", "--tokens"],
        "export" => &["--memory"],
        _ => &["--memory", "--tol-rel", "--tol-abs", "--max-iters", "--stall-iters", "--threads", "--sample"],
    };
    let paths: &[&str] = match sub {
        "solve" => &["--model", "--input", "--output", "--report"],
        "compare" => &["--model", "--input", "--csv", "--svg"],
        "export" => &["--model", "--out"],
        _ => &["--model-out", "--input-out"],
    };
    let numeric = prop::sample::select(numeric.to_vec());
    let paths = prop::sample::select(paths.to_vec());
    prop_oneof![
        (numeric, number()).prop_map(|(f, v)| vec![f.to_string(), v]),
        (paths, path()).prop_map(|(f, v)| vec![f.to_string(), v]),
        prop::sample::select(vec!["broyden", "anderson", "picard", "newton"])
            .prop_map(|v| vec!["--solver".to_string(), v.to_string()]),
    ]
    .boxed()
}

fn command() -> impl Strategy<Value = Vec<String>> {
    prop::sample::select(vec!["solve", "compare", "export", "demo"]).prop_flat_map(|sub| {
        prop::collection::vec(flag(sub), 0..6).prop_map(move |flags| {
            let mut args = vec![sub.to_string()];
            args.extend(flags.into_iter().flatten());
            args
        })
    })
}

#[test]
fn random_command_lines_exit_0_or_2_and_leave_nothing_on_error() {
    let d = workdir();
    let inputs = [d.join("m.st"), d.join("x.st")].map(|p| std::fs::read(p).unwrap());
    let config = Config { cases: 48, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    runner
        .run(&command(), |args| {
            let before = snapshot(&d);
            let out = Command::new(env!("CARGO_BIN_EXE_deq")).current_dir(&d).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            prop_assert!(matches!(code, Some(0 | 2)), "{args:?}: status {:?}, stderr {err}", out.status);
            prop_assert!(!err.contains("panicked"), "{args:?}: {err}");
            if code == Some(2) {
                prop_assert_eq!(err.lines().count(), 1, "{:?}: {}", args, err);
                prop_assert!(err.starts_with("deq: error: "), "{args:?}: {err}");
                prop_assert!(snapshot(&d) == before, "{args:?} failed and changed files: {err}");
            }
            // An input named as one (by any spelling) is never changed. (A successful
            // `demo --model-out m.st`, which reads nothing, may replace m.st.)
            let named = |file: &str| {
                args.windows(2).any(|w| {
                    matches!(w[0].as_str(), "--model" | "--input")
                        && w[1].trim_start_matches("./sub/../") == file
                })
            };
            for (name, bytes) in ["m.st", "x.st"].iter().zip(&inputs) {
                let now = std::fs::read(d.join(name)).unwrap_or_default();
                prop_assert!(!named(name) || now == *bytes, "{args:?} changed {name}");
                if now != *bytes {
                    std::fs::write(d.join(name), bytes).unwrap();
                }
            }
            // Outputs of a success are the next case's clutter.
            for name in ["out1", "out2", "sub/out3"] {
                let _ = std::fs::remove_file(d.join(name));
            }
            Ok(())
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&d);
}
