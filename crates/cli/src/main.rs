//! `x402`: deploys the x402 settlement contracts, keeps their record, checks it against the chain, and runs the
//! keeper and the local devnet.

mod cmd;
mod keys;
mod logging;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cli.run().await {
        Ok(code) => code,
        Err(err) => {
            // One line: the error and its causes, outermost first.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
