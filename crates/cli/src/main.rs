//! `x402`: deploys the x402 settlement contracts, keeps their record and checks it against the chain.

mod chain;
mod cmd;
mod config;
mod keys;
mod layout;
mod network;
mod pipeline;
mod plan;
mod record;

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
