//! The `x402` command's library: the deployer (deploy, upgrade, the record), which the binary's subcommands and
//! `x402 devnet` run in-process, as the tests do.

pub mod deployer;
pub mod keeper_settings;
