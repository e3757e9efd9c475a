//! The `deq` command-line tool, run as a user would: the built-in model, a solve from
//! files checked against an independent residual computation, the JSON report,
//! compare's traces, export, and one test per kind of bad input (one line on stderr,
//! exit status 2, no output file).

mod cli_util;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use cli_util::{deq, dir, read_f32, s};
use safetensors::tensor::{Dtype, TensorView};

/// Asserts a clean failure: status 2, exactly one line on stderr containing every
/// `needle`, nothing on stdout, and `absent` not created.
fn fails(out: &Output, needles: &[&str], absent: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("deq: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!absent.exists(), "{} was left behind", absent.display());
    // No temporary file either.
    if let Some(parent) = absent.parent().filter(|p| p.is_dir()) {
        let stray: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }
}

/// Writes tensors (name, dtype, shape, little-endian bytes) with optional metadata.
fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: Option<(&str, &str)>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, dt, shape, bytes)| (n.to_string(), TensorView::new(*dt, shape.clone(), bytes).unwrap()))
        .collect();
    let meta = meta.map(|(k, v)| HashMap::from([(k.to_string(), v.to_string())]));
    safetensors::serialize_to_file(views, meta, path).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small model (h = 12, p = 5) of the given tensors, each overridable.
fn model(path: &Path, w_shape: Vec<usize>, dtype_w: Dtype, nan: bool, drop_u: bool, act: &str) {
    let (h, p) = (12usize, 5usize);
    let n: usize = w_shape.iter().product();
    let mut w: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 / 13.0 - 0.5) * 0.15).collect();
    if nan {
        w[17] = f32::NAN;
    }
    let w_bytes = match dtype_w {
        Dtype::F64 => w.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
        _ => f32_bytes(&w),
    };
    let u: Vec<f32> = (0..h * p).map(|i| ((i * 3 % 11) as f32 / 11.0 - 0.5) * 0.4).collect();
    let b: Vec<f32> = (0..h).map(|i| 0.05 * i as f32 - 0.2).collect();
    let mut t = vec![("W", dtype_w, w_shape, w_bytes), ("b", Dtype::F32, vec![h], f32_bytes(&b))];
    if !drop_u {
        t.push(("U", Dtype::F32, vec![h, p], f32_bytes(&u)));
    }
    write_tensors(path, &t, Some(("activation", act)));
}

fn good_model(path: &Path) {
    model(path, vec![12, 12], Dtype::F32, false, false, "tanh");
}

fn input(path: &Path, shape: Vec<usize>) {
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|i| ((i * 5 % 17) as f32 / 17.0 - 0.5) * 2.0).collect();
    write_tensors(path, &[("x", Dtype::F32, shape, f32_bytes(&x))], None);
}

#[test]
fn bare_deq_solves_the_built_in_model() {
    let out = deq(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("built-in demonstration model"), "{text}");
    assert!(text.contains("converged 64/64"), "{text}");
}

/// `deq solve` from files: every sample's residual, recomputed here from the weights in
/// float64, meets the tolerance; the report agrees; the result does not depend on the
/// thread count; a [B, L, p] input gives a [B, L, h] state.
#[test]
fn solve_from_files_meets_the_tolerance_independently_checked() {
    let d = dir("solve");
    let (m, x, z, r) =
        (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"), d.join("r.json"));
    good_model(&m);
    input(&x, vec![4, 3, 5]);
    for threads in ["1", "2"] {
        let out = deq(&[
            "solve",
            "--model",
            s(&m),
            "--input",
            s(&x),
            "--output",
            s(&z),
            "--report",
            s(&r),
            "--threads",
            threads,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::copy(&z, d.join(format!("z{threads}.safetensors")));
    }
    assert_eq!(
        std::fs::read(d.join("z1.safetensors")).unwrap(),
        std::fs::read(d.join("z2.safetensors")).unwrap()
    );
    let (shape, zv) = read_f32(&z, "z");
    assert_eq!(shape, vec![4, 3, 12]);
    let (_, w) = read_f32(&m, "W");
    let (_, u) = read_f32(&m, "U");
    let (_, b) = read_f32(&m, "b");
    let (_, xv) = read_f32(&x, "x");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
    for sample in 0..4 {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for t in 0..3 {
            let row = sample * 3 + t;
            for i in 0..12 {
                let mut acc = f64::from(b[i]);
                for j in 0..12 {
                    acc += f64::from(w[i * 12 + j]) * f64::from(zv[row * 12 + j]);
                }
                for j in 0..5 {
                    acc += f64::from(u[i * 5 + j]) * f64::from(xv[row * 5 + j]);
                }
                let f = acc.tanh();
                num += (f - f64::from(zv[row * 12 + i])).powi(2);
                den += f * f;
            }
        }
        let rel = num.sqrt() / den.sqrt();
        assert!(rel < 2e-6, "sample {sample}: relative residual {rel}");
        let s = &report["samples"][sample];
        assert_eq!(s["status"], "converged");
        assert!(s["f_evals"].as_u64().unwrap() >= 2);
        assert!((s["residual_rel"].as_f64().unwrap() - rel).abs() < 1e-6, "{s} vs {rel}");
    }
    assert_eq!(report["converged"], 4);
    assert_eq!(report["state_shape"], serde_json::json!([4, 3, 12]));
    // 4 solvers of dimension 36 with 8 pairs, and the two batch buffers.
    assert_eq!(report["solver_memory_bytes"], 4 * 4 * 36 * (2 * 8 + 5) + 2 * 4 * 4 * 36);
    assert!(report["wall_time_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn compare_prints_every_solver_and_writes_traces() {
    let d = dir("compare");
    let (csv, svg) = (d.join("t.csv"), d.join("t.svg"));
    let out = deq(&["compare", "--csv", s(&csv), "--svg", s(&svg), "--sample", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for name in ["broyden", "anderson", "picard"] {
        assert!(text.lines().any(|l| l.starts_with(name) && l.contains("64/64")), "{text}");
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("evaluation,broyden,anderson,picard"));
    // The last row is the slowest solver's converged evaluation.
    let last: Vec<&str> = lines.last().unwrap().split(',').collect();
    let picard: f64 = last[3].parse().unwrap();
    assert!(picard <= 1e-6, "{last:?}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
}

#[test]
fn export_writes_a_module_and_prints_the_footprint() {
    let d = dir("export");
    let m = d.join("m.safetensors");
    good_model(&m);
    let rs = d.join("layer.rs");
    let out = deq(&["export", "--model", s(&m), "--solver", "broyden", "--memory", "4", "--out", s(&rs)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The RAM is the const-generic type's own size; weights 4·(144 + 60 + 12).
    let footprint = solver_host::solver_core::Broyden::<12, 4>::FOOTPRINT;
    assert!(footprint >= 4 * 12 * 13);
    assert!(text.contains(&format!("solver RAM:    {footprint} bytes")), "{text}");
    assert!(text.contains(&format!("weight flash:  {} bytes", 4 * (144 + 60 + 12))), "{text}");
    let module = std::fs::read_to_string(&rs).unwrap();
    assert!(module.contains("pub type Solver = solver_core::Broyden<H, 4>;"));
    assert!(module.contains("pub const H: usize = 12;") && module.contains("pub const P: usize = 5;"));
    assert!(module.contains(&format!("const _: () = assert!(SOLVER_RAM == {footprint});")));
    // Every weight reads back bit for bit.
    let (_, w) = read_f32(&m, "W");
    let body = module
        .split("pub static W")
        .nth(1)
        .unwrap()
        .split(" = [")
        .nth(1)
        .unwrap()
        .split("\n];")
        .next()
        .unwrap();
    let parsed: Vec<f32> =
        body.split(['[', ']', ',', ';', '=', ':']).filter_map(|t| t.trim().parse::<f32>().ok()).collect();
    assert_eq!(
        parsed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        w.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn missing_model_file() {
    let d = dir("missing");
    let (x, z) = (d.join("x.safetensors"), d.join("z.safetensors"));
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&d.join("nope.safetensors")), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["nope.safetensors"], &z);
}

#[test]
fn truncated_model_file() {
    let d = dir("truncated");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    good_model(&m);
    let bytes = std::fs::read(&m).unwrap();
    std::fs::write(&m, &bytes[..bytes.len() / 2]).unwrap();
    input(&x, vec![2, 5]);
    fails(&deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]), &["m.safetensors"], &z);
}

#[test]
fn not_a_safetensors_file() {
    let d = dir("text");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    std::fs::write(&m, "W = [[0.5]]\n").unwrap();
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "not a valid safetensors file"], &z);
}

#[test]
fn missing_tensor() {
    let d = dir("names");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, vec![12, 12], Dtype::F32, false, true, "tanh");
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "\"U\""], &z);
}

#[test]
fn wrong_shape() {
    let d = dir("shape");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, vec![12, 13], Dtype::F32, false, false, "tanh");
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "\"W\"", "[12, 13]"], &z);
}

#[test]
fn wrong_dtype() {
    let d = dir("dtype");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, vec![12, 12], Dtype::F64, false, false, "tanh");
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "\"W\"", "F64"], &z);
}

#[test]
fn nan_in_the_weights() {
    let d = dir("nan");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, vec![12, 12], Dtype::F32, true, false, "tanh");
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "\"W\"", "NaN", "17"], &z);
}

#[test]
fn bad_activation() {
    let d = dir("act");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, vec![12, 12], Dtype::F32, false, false, "gelu");
    input(&x, vec![2, 5]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["m.safetensors", "gelu"], &z);
}

#[test]
fn input_of_the_wrong_width() {
    let d = dir("width");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    good_model(&m);
    input(&x, vec![2, 6]);
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["x.safetensors", "input width 6", "5"], &z);
}

#[test]
fn unwritable_output_path() {
    let d = dir("unwritable");
    let (m, x) = (d.join("m.safetensors"), d.join("x.safetensors"));
    good_model(&m);
    input(&x, vec![2, 5]);
    let z = d.join("no-such-dir").join("z.safetensors");
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    fails(&out, &["z.safetensors", "No such file or directory"], &z);
    // A directory as the output, and an unwritable report.
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&d)]);
    assert_eq!(out.status.code(), Some(2));
    let r = d.join("missing").join("r.json");
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--report", s(&r)]);
    fails(&out, &["r.json"], &r);
}

#[test]
fn bad_arguments() {
    let d = dir("args");
    let z = d.join("z.safetensors");
    fails(&deq(&["solve", "--memory", "0", "--output", s(&z)]), &["--memory"], &z);
    fails(&deq(&["solve", "--tol-rel", "NaN", "--output", s(&z)]), &["--tol-rel"], &z);
    fails(&deq(&["solve", "--input", "x.safetensors", "--output", s(&z)]), &["--model"], &z);
    fails(&deq(&["compare", "--sample", "64"]), &["--sample 64"], &z);
    // clap's own usage errors also exit with status 2.
    assert_eq!(deq(&["solve", "--solver", "newton"]).status.code(), Some(2));
}

/// Runs the scratch crate `krate` (its `src/`, written by the caller) with a manifest
/// that depends on solver-core, offline, and returns its standard output.
fn run_scratch_crate(krate: &Path, target: &Path) -> String {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../solver-core");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"scratch\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             solver-core = {{ path = {:?} }}\n\n[workspace]\n",
            core.canonicalize().unwrap()
        ),
    )
    .unwrap();
    let run = Command::new(env!("CARGO"))
        .args(["run", "--offline", "-q", "--manifest-path", s(&krate.join("Cargo.toml"))])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// The exported module compiles against solver-core, and its const-generic solver finds
/// the same fixed point as `deq solve` (to f32 accuracy): the firmware path and the host
/// path agree. Builds a scratch crate with cargo (offline, from the local cache).
#[test]
fn exported_module_compiles_and_solves_like_the_host() {
    let d = dir("export-build");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    good_model(&m);
    input(&x, vec![1, 5]);
    let solved = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    assert!(solved.status.success(), "{}", String::from_utf8_lossy(&solved.stderr));
    let (_, host_z) = read_f32(&z, "z");
    let (_, xv) = read_f32(&x, "x");

    let krate = d.join("krate");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let out = deq(&["export", "--model", s(&m), "--memory", "6", "--out", s(&krate.join("src/layer.rs"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let xs = xv.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
    std::fs::write(
        krate.join("src/main.rs"),
        format!(
            "mod layer;\nuse layer::*;\nfn main() {{\n    let x: [f32; P] = [{xs}];\n    let mut c = [0.0f32; H];\n    \
             injection(&x, &mut c);\n    let mut z = [0.0f32; H];\n    let r = Solver::new().solve(|z, out| layer(z, &c, out), \
             &mut z, &solver_core::Options::DEFAULT);\n    assert!(r.status.is_converged());\n    \
             let text: Vec<String> = z.iter().map(|v| format!(\"{{v:?}}\")).collect();\n    println!(\"{{}}\", text.join(\" \"));\n}}\n"
        ),
    )
    .unwrap();
    let stdout = run_scratch_crate(&krate, &d.join("target"));
    let fw: Vec<f32> = stdout.split_whitespace().map(|t| t.parse().unwrap()).collect();
    assert_eq!(fw.len(), host_z.len());
    for (a, b) in fw.iter().zip(&host_z) {
        assert!((a - b).abs() < 1e-5, "exported {a} vs host {b}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `--device cuda` where it cannot run is one line and exit status 2, with no output
/// file: a build without the `cuda` feature says so; a build with it, on a machine with
/// no CUDA driver (CI), names the driver. A solver other than Broyden is refused either
/// way, before anything is read.
#[test]
fn device_cuda_without_a_gpu() {
    let d = dir("cuda");
    let z = d.join("z.safetensors");
    let out = deq(&["solve", "--device", "cuda", "--output", s(&z)]);
    #[cfg(feature = "cuda")]
    {
        if solver_host::cuda::driver_available() {
            eprintln!("this machine has a CUDA driver: the no-driver path is not checked here");
        } else {
            fails(&out, &["--device cuda", "driver"], &z);
        }
    }
    #[cfg(not(feature = "cuda"))]
    fails(&out, &["--device cuda", "without CUDA support"], &z);
    let out = deq(&["solve", "--device", "cuda", "--solver", "anderson", "--output", s(&z)]);
    fails(&out, &["--device cuda", "broyden only"], &z);
}

/// The digits classifier of the firmware example (firmware/digits): `deq solve` writes
/// the logits and classes beside `z`, both recomputed here from `z`, `R` and `c` in f64,
/// and prints the accuracy against the file's labels; `deq export` writes `logits` and
/// `classify`, f32 and int8, and the exported f32 classifier, compiled, predicts the
/// host's class for every image it is given.
#[test]
fn classifier_solve_and_export() {
    let d = dir("classifier");
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/digits");
    let (m, x) = (digits.join("model.safetensors"), digits.join("test.safetensors"));
    let z = d.join("z.safetensors");
    let out = deq(&["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (z_shape, zv) = read_f32(&z, "z");
    let (l_shape, logits) = read_f32(&z, "logits");
    let (_, r) = read_f32(&m, "R");
    let (_, c) = read_f32(&m, "c");
    let (n, h, k) = (z_shape[0], z_shape[1], c.len());
    assert_eq!((z_shape, l_shape), (vec![360, 32], vec![360, 10]));
    let bytes = std::fs::read(&z).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let class = st.tensor("class").unwrap();
    assert_eq!((class.dtype(), class.shape()), (Dtype::I64, &[360][..]));
    let class: Vec<i64> =
        class.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    let input = std::fs::read(&x).unwrap();
    let labels: Vec<i64> = safetensors::SafeTensors::deserialize(&input)
        .unwrap()
        .tensor("label")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    for i in 0..n {
        let want: Vec<f64> = (0..k)
            .map(|j| {
                f64::from(c[j])
                    + (0..h).map(|t| f64::from(r[j * h + t]) * f64::from(zv[i * h + t])).sum::<f64>()
            })
            .collect();
        for j in 0..k {
            assert!((f64::from(logits[i * k + j]) - want[j]).abs() < 1e-5, "logit ({i}, {j})");
        }
        let best = (0..k).fold(0, |b, j| if want[j] > want[b] { j } else { b });
        assert_eq!(class[i], best as i64, "image {i}");
    }
    let right = class.iter().zip(&labels).filter(|(a, b)| a == b).count();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("accuracy {:.4} ({right}/360 rows match \"label\")", right as f64 / 360.0)),
        "{stdout}"
    );
    assert!(right >= 346, "the committed model classifies {right}/360 test images right (< 96%)");

    // Export, f32 and int8, and run the f32 classifier on the first 40 images.
    let krate = d.join("krate");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    for (weights, file, needle) in
        [("f32", "f32.rs", "pub static W: [[f32; H]; H]"), ("int8", "int8.rs", "pub static W: [[i8; H]; H]")]
    {
        let rs = krate.join("src").join(file);
        let out = deq(&["export", "--model", s(&m), "--weights", weights, "--out", s(&rs)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&rs).unwrap();
        for n in [needle, "pub const K: usize = 10;", "pub fn classify(z: &[f32; H]) -> Option<usize>"] {
            assert!(text.contains(n), "{file} lacks {n}");
        }
        assert!(String::from_utf8_lossy(&out.stdout).contains("readout:       10 classes"));
    }
    let (_, xv) = read_f32(&x, "x");
    let images = 40;
    let xs: Vec<String> = xv[..images * 64]
        .chunks(64)
        .map(|r| format!("[{}]", r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")))
        .collect();
    std::fs::write(
        krate.join("src/main.rs"),
        format!(
            "#[allow(dead_code)]\nmod f32;\n#[allow(dead_code)]\nmod int8;\nconst X: [[f32; 64]; {images}] = [{}];\n\
             const OPTS: solver_core::Options = solver_core::Options {{ max_iters: 200, tol_rel: 1e-6, tol_abs: 0.0, stall_iters: 50, ..solver_core::Options::DEFAULT }};\n\
             fn main() {{\n    for x in &X {{\n        let mut c = [0.0f32; f32::H];\n        f32::injection(x, &mut c);\n        \
             let mut z = [0.0f32; f32::H];\n        let r = f32::Solver::new().solve(|z, o| f32::layer(z, &c, o), &mut z, &OPTS);\n        \
             assert!(r.status.is_converged());\n        let mut c8 = [0.0f32; int8::H];\n        int8::injection(x, &mut c8);\n        \
             let mut z8 = [0.0f32; int8::H];\n        let r8 = int8::Solver::new().solve(|z, o| int8::layer(z, &c8, o), &mut z8, &OPTS);\n        \
             assert!(r8.status.is_converged());\n        println!(\"{{}} {{}}\", f32::classify(&z).unwrap(), int8::classify(&z8).unwrap());\n    }}\n}}\n",
            xs.join(",\n")
        ),
    )
    .unwrap();
    let stdout = run_scratch_crate(&krate, &d.join("target"));
    let lines: Vec<(i64, i64)> = stdout
        .lines()
        .map(|l| {
            let mut t = l.split_whitespace().map(|v| v.parse().unwrap());
            (t.next().unwrap(), t.next().unwrap())
        })
        .collect();
    assert_eq!(lines.len(), images);
    let f32_classes: Vec<i64> = lines.iter().map(|l| l.0).collect();
    assert_eq!(f32_classes, class[..images], "exported f32 classifier vs deq solve");
    // int8 weights: the classes stay those of the labels as often as f32's do, to one image.
    let int8_right = lines.iter().zip(&labels).filter(|(l, y)| l.1 == **y).count();
    let f32_right = lines.iter().zip(&labels).filter(|(l, y)| l.0 == **y).count();
    assert!(int8_right + 1 >= f32_right, "int8 {int8_right} vs f32 {f32_right} of {images}");
    let _ = std::fs::remove_dir_all(&d);
}
