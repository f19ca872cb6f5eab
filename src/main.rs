//! `bazaar`: start the whole shop (`up`), run one service (`serve`), inspect a running shop
//! (`status`), measure it (`bench`) and load it (`load`).
#![forbid(unsafe_code)]

mod bench;
mod chaos;
mod check;
mod cli;
mod load;
mod run_file;
mod serve;
mod status;
mod up;

use clap::Parser;

/// `EX_USAGE`: a bad flag or setting, reported at start in one line.
const EX_USAGE: i32 = 64;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bazaar: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Up(args) => up::run(args).await,
            cli::Command::Serve(args) => serve::run(args).await,
            cli::Command::Status(args) => status::run(args).await,
            cli::Command::Bench(args) => bench::run(args).await,
            cli::Command::Load(args) => load::command(args).await,
            cli::Command::Check(args) => check::command(args).await,
            cli::Command::Chaos(args) => chaos::command(args).await,
        }
    });
    if let Err(err) = result {
        if let Some(usage) = err.downcast_ref::<cli::UsageError>() {
            eprintln!("bazaar: {usage}");
            std::process::exit(EX_USAGE);
        }
        eprintln!("bazaar: {err:#}");
        std::process::exit(1);
    }
}
