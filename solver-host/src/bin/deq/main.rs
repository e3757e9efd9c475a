//! `deq`: solve DEQ layers from files, compare the solvers, export a layer for firmware.
//!
//! ```text
//! deq                                   # solve the built-in demonstration model
//! deq solve --model M --input X --output Z [--solver broyden] [--memory 8] [--report R.json] [--device cuda]
//! deq compare [--model M --input X] [--csv T.csv] [--svg T.svg]
//! deq export --model M --solver broyden --memory 8 --out layer.rs
//! deq demo --model-out M --input-out X [--hidden 256 --input-width 64 --samples 64 --tokens 1]
//! ```
//!
//! Every error (a missing or malformed file, wrong tensor names, shapes or dtypes, NaN
//! weights, an input of the wrong width, an unwritable output, a size this machine
//! cannot hold, a bad argument) is one line on stderr, control characters escaped, and
//! exit status 2, and no output file is left behind: outputs are staged and written
//! together, or not at all (see [`outputs`]).

mod args;
mod compare;
mod export;
mod gpu;
mod limits;
mod outputs;
mod problem;
mod solve;
mod svg;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, SolveArgs};

fn main() -> ExitCode {
    outputs::guard_signals();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => return fail(&usage_error(&e)),
    };
    let result = match cli.command {
        None => solve::run(&SolveArgs::default()),
        Some(Command::Solve(a)) => solve::run(&a),
        Some(Command::Compare(a)) => compare::run(&a),
        Some(Command::Export(a)) => export::run(&a),
        Some(Command::Demo(a)) => problem::write_demo(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => fail(&msg),
    }
}

/// Prints `msg` as one line, control characters escaped, and gives exit status 2.
fn fail(msg: &str) -> ExitCode {
    eprintln!("deq: error: {}", solver_host::model::escape_controls(msg));
    ExitCode::from(2)
}

/// clap's message, on one line: its first line, without its own `error: ` prefix.
fn usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
    format!("{first} (deq --help lists the arguments)")
}
