//! The spreadsheet import/export benchmark (a benchmark, not a timed test):
//!
//! ```text
//! cargo bench --features xlsx,postgres --bench io -- [--rows 100000] [--batch 2000] [--runs 5]
//!     [--pg postgres://postgres@127.0.0.1:5432/postgres] [--million] [--dir /tmp/crm-bench-io]
//! ```
//!
//! Every measurement runs in a child process (this binary with `--child`),
//! so each peak memory figure is its own. See `io_bench/mod.rs`.

#[path = "io_bench/mod.rs"]
mod io_bench;

// The allocator the example CLI uses too: every measurement, the baselines
// included, runs with it (see the README on allocators).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kind = args.get(i + 1).cloned().unwrap_or_default();
        let rest = args[i + 1..].to_vec();
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        match rt.block_on(io_bench::child(&kind, &rest)) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let plan = io_bench::plan_from_args(&args);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let launcher = io_bench::Launcher {
        exe,
        prefix: Vec::new(),
    };
    match io_bench::run(&launcher, &plan, &mut |m| eprintln!("{m}")) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
