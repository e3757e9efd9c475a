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
//! weights, an input of the wrong width, an unwritable output) is one line on stderr
//! and exit status 2, and no output file is left behind.

mod args;
mod compare;
mod export;
mod files;
mod gpu;
mod problem;
mod solve;
mod svg;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, SolveArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => solve::run(&SolveArgs::default()),
        Some(Command::Solve(a)) => solve::run(&a),
        Some(Command::Compare(a)) => compare::run(&a),
        Some(Command::Export(a)) => export::run(&a),
        Some(Command::Demo(a)) => problem::write_demo(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("deq: error: {msg}");
            ExitCode::from(2)
        }
    }
}
