//! A signing key (the deployer's, the keeper's, the facilitator's or a payer's): from `X402_PRIVATE_KEY`, or from a Foundry/geth keystore file whose password comes from
//! `X402_KEYSTORE_PASSWORD` or a prompt. Never from a plain command-line argument.

use std::io::IsTerminal;
use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail};

/// Environment variable holding a hex private key.
pub(crate) const PRIVATE_KEY_ENV: &str = "X402_PRIVATE_KEY";
/// Environment variable holding the keystore password.
pub(crate) const KEYSTORE_PASSWORD_ENV: &str = "X402_KEYSTORE_PASSWORD";

/// Loads the `role`'s signer ("deployer", "payer", ...) from `keystore` if given, else from `X402_PRIVATE_KEY`.
pub(crate) fn load(keystore: Option<&Path>, role: &str) -> eyre::Result<PrivateKeySigner> {
    if let Some(path) = keystore {
        if !path.is_file() {
            bail!("keystore file {} does not exist", path.display());
        }
        let password = match std::env::var(KEYSTORE_PASSWORD_ENV) {
            Ok(password) => password,
            Err(_) if std::io::stdin().is_terminal() => {
                rpassword::prompt_password(format!("password for {}: ", path.display()))
                    .wrap_err("cannot read the keystore password")?
            }
            Err(_) => {
                bail!("set {KEYSTORE_PASSWORD_ENV} to unlock {} (no terminal to prompt on)", path.display())
            }
        };
        return PrivateKeySigner::decrypt_keystore(path, password)
            .wrap_err_with(|| format!("cannot decrypt keystore {}", path.display()));
    }
    let Ok(key) = std::env::var(PRIVATE_KEY_ENV) else {
        bail!("no {role} key: set {PRIVATE_KEY_ENV} or pass --keystore FILE");
    };
    // The key itself never appears in the error.
    key.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|_| eyre::eyre!("{PRIVATE_KEY_ENV} is not a 32-byte hex private key"))
}
