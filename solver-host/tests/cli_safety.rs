//! `deq` against the defects an adversarial review found: outputs that would replace a
//! device or an input, runs that failed after writing part of their outputs, sizes that
//! aborted the process, raw control characters in messages, NaN reported as converged,
//! results that depended on the thread count, unbounded reads, temporary files left by
//! a signal, and misleading messages. Each test states what it checks.

mod cli_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cli_util::{deq, dir, read_f32, s};
use solver_host::model::{Activation, DeqLayer, InputBatch};

/// The names in `d`, sorted.
fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Status 2 and one line on stderr, starting `deq: error: ` and containing every needle.
fn refused(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("deq: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    err
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `deq demo` files of a small model in `d`: `m.st` (h = 16, p = 4) and `x.st` (5 samples).
fn demo(d: &Path) -> (PathBuf, PathBuf) {
    let (m, x) = (d.join("m.st"), d.join("x.st"));
    let args = ["demo", "--model-out", s(&m), "--input-out", s(&x), "--hidden", "16", "--input-width", "4"];
    ok(&deq(&[&args[..], &["--samples", "5"]].concat()));
    (m, x)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Item 1: an output that is a device or a FIFO is refused before any work and is
/// still what it was afterwards, for every output flag of every command.
#[test]
fn outputs_to_devices_and_fifos_are_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let d = dir("safety-devices");
    let (m, x) = demo(&d);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for target in [Path::new("/dev/null"), Path::new("/dev/full"), fifo.as_path()] {
        let t = s(target);
        let base = ["--model", s(&m), "--input", s(&x)];
        for args in [
            [&["solve"][..], &base, &["--output", t]].concat(),
            [&["solve"][..], &base, &["--report", t]].concat(),
            [&["compare"][..], &base, &["--csv", t]].concat(),
            [&["compare"][..], &base, &["--svg", t]].concat(),
            vec!["export", "--model", s(&m), "--out", t],
            vec!["demo", "--model-out", t, "--input-out", s(&d.join("x2.st"))],
            vec!["demo", "--model-out", s(&d.join("m2.st")), "--input-out", t],
        ] {
            let out = deq(&args);
            refused(&out, &[t, "not a regular file"]);
            assert!(out.stdout.is_empty(), "{args:?} did work: {}", String::from_utf8_lossy(&out.stdout));
            let ft = std::fs::symlink_metadata(target).unwrap().file_type();
            assert!(ft.is_char_device() || ft.is_fifo(), "{t} was replaced ({args:?})");
        }
    }
    assert_eq!(listing(&d), ["fifo", "m.st", "x.st"]);
}

/// Item 2: an output that is the same file as an input or as another output — by any
/// spelling, or through a hard link or a symbolic link — is refused and the file is
/// unchanged.
#[test]
fn outputs_naming_an_input_or_each_other_are_refused() {
    let d = dir("safety-same");
    let (m, x) = demo(&d);
    let (m_bytes, x_bytes) = (std::fs::read(&m).unwrap(), std::fs::read(&x).unwrap());
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let m_odd = sub.join("..").join("m.st");
    let hard = d.join("hard.st");
    std::fs::hard_link(&x, &hard).unwrap();
    let link = d.join("link.st");
    std::os::unix::fs::symlink(&m, &link).unwrap();
    let z = d.join("z.st");
    let base = ["solve", "--model", s(&m), "--input", s(&x)];
    for (args, needles) in [
        ([&base[..], &["--output", s(&x)]].concat(), ["--output", "--input"]),
        ([&base[..], &["--output", s(&m_odd)]].concat(), ["--output", "--model"]),
        ([&base[..], &["--output", s(&hard)]].concat(), ["--output", "--input"]),
        ([&base[..], &["--report", s(&link)]].concat(), ["--report", "--model"]),
        ([&base[..], &["--output", s(&z), "--report", s(&z)]].concat(), ["--report", "--output"]),
        (vec!["compare", "--csv", s(&z), "--svg", s(&d.join(".").join("z.st"))], ["--svg", "--csv"]),
        (vec!["export", "--model", s(&m), "--out", s(&link)], ["--out", "--model"]),
        (
            vec!["demo", "--model-out", s(&z), "--input-out", s(&d.join("sub/../z.st"))],
            ["--input-out", "--model-out"],
        ),
    ] {
        let out = deq(&args);
        refused(&out, &[&needles[..], &["same file"]].concat());
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read(&m).unwrap(), m_bytes);
    assert_eq!(std::fs::read(&x).unwrap(), x_bytes);
    assert_eq!(listing(&d), ["hard.st", "link.st", "m.st", "sub", "x.st"]);
    // The symbolic link is followed when it is an output of its own: its target is
    // written, the link stays a link.
    let zl = d.join("zl.st");
    std::os::unix::fs::symlink(&z, &zl).unwrap();
    std::fs::write(&z, b"old").unwrap();
    ok(&deq(&[&base[..], &["--output", s(&zl)]].concat()));
    assert!(std::fs::symlink_metadata(&zl).unwrap().file_type().is_symlink());
    assert_eq!(read_f32(&z, "z").0, vec![5, 16]);
}

/// Item 3: when one output cannot be written, none is: the check happens before any
/// work (the name below is one the file system refuses, 250 bytes long: the old
/// permission-bit check passed it and failed only after writing the other output).
#[test]
fn a_run_that_cannot_write_one_output_writes_none() {
    let d = dir("safety-partial");
    let (m, x) = demo(&d);
    let (z, long) = (d.join("z.st"), d.join("r".repeat(250)));
    let base = ["--model", s(&m), "--input", s(&x)];
    for args in [
        [&["solve"][..], &base, &["--output", s(&z), "--report", s(&long)]].concat(),
        [&["compare"][..], &base, &["--csv", s(&z), "--svg", s(&long)]].concat(),
        vec!["demo", "--model-out", s(&z), "--input-out", s(&long)],
    ] {
        let out = deq(&args);
        refused(&out, &["cannot write there"]);
        assert!(out.stdout.is_empty(), "{args:?} did work");
        assert_eq!(listing(&d), ["m.st", "x.st"], "{args:?}");
    }
    // A directory this user cannot write, or cannot enter: refused before any work,
    // with the system's reason, not "does not exist". (Root passes permission checks.)
    if !is_root() {
        use std::os::unix::fs::PermissionsExt;
        let ro = d.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out =
            deq(&[&["solve"][..], &base, &["--output", s(&z), "--report", s(&ro.join("r.json"))]].concat());
        refused(&out, &["r.json", "Permission denied"]);
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = deq(&[&["solve"][..], &base, &["--output", s(&ro.join("in").join("z.st"))]].concat());
        let err = refused(&out, &["Permission denied"]);
        assert!(!err.contains("does not exist"), "{err}");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!z.exists());
    }
}

/// Item 4: sizes the machine cannot hold are exit status 2 with a message naming the
/// flag, before anything is allocated; `export` computes a footprint without
/// allocating it. (The sizes are far beyond any machine's memory.)
#[test]
fn sizes_beyond_memory_are_errors_naming_the_flag() {
    let d = dir("safety-sizes");
    let rs = d.join("l.rs");
    let out = deq(&["export", "--memory", "1000000000", "--out", s(&rs)]);
    ok(&out);
    // Broyden<256, 10⁹>: 4·256·(2·10⁹ + 5) + the settings.
    assert!(String::from_utf8_lossy(&out.stdout).contains("solver RAM:    2048000005"), "{out:?}");
    for (args, flag) in [
        (vec!["solve", "--solver", "anderson", "--memory", "100000"], "--memory 100000"),
        (vec!["solve", "--memory", "1099511627776"], "--memory 1099511627776"),
        (vec!["compare", "--memory", "1099511627776"], "--memory 1099511627776"),
        (vec!["demo", "--hidden", "10000000"], "--hidden 10000000"),
        (vec!["demo", "--samples", "1000000000000"], "--samples 1000000000000"),
        (vec!["demo", "--samples", "18446744073709551615", "--tokens", "3"], "--samples"),
    ] {
        let (m, x) = (d.join("m.st"), d.join("x.st"));
        let outs = ["--model-out", s(&m), "--input-out", s(&x)];
        let args = if args[0] == "demo" { [&args[..], &outs].concat() } else { args };
        refused(&deq(&args), &[flag, "memory"]);
    }
    assert_eq!(listing(&d), ["l.rs"]);
}

/// A safetensors file from a raw JSON header and data.
fn raw_file(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// Item 5: what a file or a path brings into a message is escaped: one line, no raw
/// escape sequence. Item 11: a tensor named twice is refused.
#[test]
fn file_contents_reach_the_terminal_escaped() {
    let d = dir("safety-escape");
    let (_, x) = demo(&d);
    let m = d.join("m.st");
    raw_file(&m, r#"{"W":{"dtype":"F\n32\u001b[31m","shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]);
    let err = refused(&deq(&["solve", "--model", s(&m), "--input", s(&x)]), &["m.st", "\\n32\\u{1b}[31m"]);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // A path with a newline and an escape in it.
    let odd = d.join("a\nb\u{1b}[2J.st");
    std::fs::copy(&m, &odd).unwrap();
    let err = refused(&deq(&["solve", "--model", s(&odd), "--input", s(&x)]), &["a\\nb\\u{1b}[2J.st"]);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // Two entries named "b" with the same offsets: the parser alone kept one of them.
    let h = r#"{"W":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"U":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    raw_file(&m, h, &[0; 12]);
    refused(&deq(&["export", "--model", s(&m), "--out", s(&d.join("l.rs"))]), &["\"b\"", "named twice"]);
}

/// Item 6 (and 7 for statuses): a relu layer whose injection is `∞ − ∞` for one sample
/// gives that sample status `non-finite` — not `converged` with `z = 0` — with any
/// thread count; the others converge; the JSON report writes the non-finite residual
/// as a string, not as `null`.
#[test]
fn nan_in_a_relu_layer_ends_the_sample_non_finite() {
    let d = dir("safety-relu");
    let (m, x) = (d.join("m.st"), d.join("x.st"));
    let (h, p) = (3, 2);
    let w = vec![0.1, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.1];
    let u = vec![3e38, -3e38, 1.0, 0.5, -0.5, 1.0];
    DeqLayer::<f32>::new(h, p, w, u, vec![0.1; h], Activation::Relu).unwrap().save(&m).unwrap();
    // Sample 1: 2·3e38 − 2·3e38 = ∞ − ∞ in output 0; samples 0 and 2 give exactly 0 there.
    let batch = InputBatch::<f32> {
        shape: vec![3, 2],
        x: vec![0.5, 0.5, 2.0, 2.0, -1.0, -1.0],
        z0: None,
        labels: None,
    };
    batch.save(&x).unwrap();
    for threads in ["1", "2", "3"] {
        let r = d.join(format!("r{threads}.json"));
        ok(&deq(&["solve", "--model", s(&m), "--input", s(&x), "--report", s(&r), "--threads", threads]));
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
        let status: Vec<&str> = (0..3).map(|i| report["samples"][i]["status"].as_str().unwrap()).collect();
        assert_eq!(status, ["converged", "non-finite", "converged"], "threads {threads}");
        for key in ["residual_abs", "residual_rel"] {
            let v = &report["samples"][1][key];
            assert!(matches!(v.as_str(), Some("inf" | "NaN")), "{key}: {v}");
        }
    }
}

/// Item 7: a sample's fixed point is bit for bit the same with 1, 2 or 3 threads and
/// solved alone as in the batch (the product's rounding no longer depends on how many
/// rows share it).
#[test]
fn results_do_not_depend_on_threads_or_on_the_batch() {
    let d = dir("safety-determinism");
    let (m, x) = (d.join("m.st"), d.join("x.st"));
    let args = ["demo", "--model-out", s(&m), "--input-out", s(&x), "--hidden", "100", "--input-width", "24"];
    ok(&deq(&[&args[..], &["--samples", "9"]].concat()));
    let solve = |input: &Path, out: &Path, threads: &str| {
        ok(&deq(&["solve", "--model", s(&m), "--input", s(input), "--output", s(out), "--threads", threads]));
        read_f32(out, "z").1
    };
    let z1 = solve(&x, &d.join("z1.st"), "1");
    assert_eq!(bits(&z1), bits(&solve(&x, &d.join("z2.st"), "2")));
    assert_eq!(bits(&z1), bits(&solve(&x, &d.join("z3.st"), "3")));
    let (_, xv) = read_f32(&x, "x");
    for sample in [0, 4, 8] {
        let alone = d.join("alone.st");
        let row = xv[sample * 24..(sample + 1) * 24].to_vec();
        InputBatch { shape: vec![1, 24], x: row, z0: None, labels: None }.save(&alone).unwrap();
        let z = solve(&alone, &d.join("za.st"), "1");
        assert_eq!(bits(&z), bits(&z1[sample * 100..(sample + 1) * 100]), "sample {sample}");
    }
}

/// Item 8: `--threads` is bounded. Item 11: a negative number is a bad value of its
/// flag, not an unknown argument.
#[test]
fn thread_count_is_bounded_and_negative_numbers_name_their_flag() {
    refused(&deq(&["solve", "--threads", "1000000"]), &["--threads 1000000", "at most 1024"]);
    let err = refused(&deq(&["solve", "--max-iters", "-1"]), &["--max-iters", "-1"]);
    assert!(!err.contains("unexpected argument"), "{err}");
    refused(&deq(&["demo", "--hidden", "-3", "--model-out", "m", "--input-out", "x"]), &["--hidden", "-3"]);
}

/// Waits for `child`, killing it (and failing) if it has not ended after a minute: a
/// guard against a hang, not a measurement.
fn wait_or_kill(mut child: std::process::Child) -> Output {
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("deq did not finish");
}

/// Item 9: a stream that is not a regular file is refused, not read: `/dev/zero`
/// (which grew memory without bound) and a FIFO with no writer (which blocked forever).
#[test]
fn streams_are_refused_as_inputs() {
    let d = dir("safety-streams");
    let (m, x) = demo(&d);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (model, input) in [("/dev/zero", s(&x)), (s(&fifo), s(&x)), (s(&m), "/dev/zero"), (s(&m), s(&fifo))] {
        let child = Command::new(env!("CARGO_BIN_EXE_deq"))
            .args(["solve", "--model", model, "--input", input])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        refused(&wait_or_kill(child), &["not a regular file"]);
    }
}

/// Item 10: SIGINT or SIGTERM while an output is staged removes its temporary files
/// (the outputs are staged before the work, so the signal lands while they exist).
#[test]
fn a_signal_removes_the_temporary_files() {
    for (name, sig) in [("int", libc::SIGINT), ("term", libc::SIGTERM)] {
        let d = dir(&format!("safety-signal-{name}"));
        let (m, x) = (d.join("m.st"), d.join("x.st"));
        // A large input: its generation takes long enough to be interrupted.
        let child = Command::new(env!("CARGO_BIN_EXE_deq"))
            .args(["demo", "--model-out", s(&m), "--input-out", s(&x), "--samples", "400000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until both temporary files exist (or the process has ended).
        let mut child = child;
        while listing(&d).len() < 2 && child.try_wait().unwrap().is_none() {
            std::thread::yield_now();
        }
        // SAFETY: kill with a valid pid and signal.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let status = child.wait().unwrap();
        if status.success() {
            // It finished first: nothing to check but that its outputs are whole.
            assert_eq!(listing(&d), ["m.st", "x.st"]);
            continue;
        }
        assert_eq!(status.code(), Some(128 + sig), "{status:?}");
        assert!(listing(&d).is_empty(), "{name}: left {:?}", listing(&d));
    }
}
