//! What a local demo or test does around a keeper on anvil: fund accounts with the test token, create
//! subscriptions, open channels and sign vouchers, sign x402 payments, move chain time. Used by `x402 devnet`,
//! the keeper's integration tests and its benchmark; it needs anvil (`evm_increaseTime`) and a TestStablecoin
//! owned by the first key.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use x402_bindings::{ISubscription, PaymentChannel, Subscription, TestStablecoin, voucher};

use x402_keeper::config::Contracts;
use x402_keeper::intake::{Token, domain_of};
use x402_protocol::network::v1_name;

use crate::payments::{ExactTerms, signed_request};

/// How long a demo transaction may take to be mined.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Value of the reference transfer [`Demo::standalone_transfer_gas`] makes.
pub const STANDALONE_VALUE: u64 = 1_000;

/// A demo step failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(pub String);

fn err(context: &str) -> impl FnOnce(alloy::contract::Error) -> DemoError + '_ {
    move |e| DemoError(format!("{context}: {e}"))
}

/// anvil, the deployed contracts and a wallet holding every demo key.
#[derive(Debug, Clone)]
pub struct Demo {
    /// Provider whose wallet holds every key given to [`Demo::connect`]; the first one is the default sender.
    pub provider: DynProvider,
    /// The chain.
    pub chain_id: u64,
    /// The test token, as the intake knows it.
    pub token: Token,
    /// The contracts.
    pub contracts: Contracts,
}

impl Demo {
    /// Connects to `rpc_url` with `keys` (the first must own the test token).
    pub async fn connect(
        rpc_url: &str,
        keys: &[PrivateKeySigner],
        token: Address,
        contracts: Contracts,
    ) -> Result<Self, DemoError> {
        let first = keys.first().ok_or_else(|| DemoError("no keys".into()))?;
        let mut wallet = EthereumWallet::from(first.clone());
        for key in &keys[1..] {
            wallet.register_signer(key.clone());
        }
        let url = rpc_url.parse().map_err(|e| DemoError(format!("invalid RPC URL {rpc_url}: {e}")))?;
        let provider = ProviderBuilder::new().wallet(wallet).connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.map_err(|e| DemoError(format!("RPC: {e}")))?;
        let contract = TestStablecoin::new(token, &provider);
        let name = contract.name().call().await.map_err(err("token name"))?;
        let version = contract.version().call().await.map_err(err("token version"))?;
        Ok(Self { provider, chain_id, token: Token { address: token, name, version }, contracts })
    }

    async fn mined(
        &self,
        what: &str,
        pending: Result<
            alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
            alloy::contract::Error,
        >,
    ) -> Result<TransactionReceipt, DemoError> {
        let hash = *pending.map_err(|e| DemoError(format!("{what}: {e}")))?.tx_hash();
        // Polled directly: alloy's receipt watcher waits a poll interval (about 250 ms) even on an automining anvil.
        let receipt = x402_chain::receipt::wait(&self.provider, hash, RECEIPT_TIMEOUT)
            .await
            .map_err(|e| DemoError(format!("{what}: {e}")))?
            .ok_or_else(|| {
                DemoError(format!("{what}: {hash} not mined in {} s", RECEIPT_TIMEOUT.as_secs()))
            })?;
        if !receipt.status() {
            return Err(DemoError(format!("{what} reverted in {}", receipt.transaction_hash)));
        }
        Ok(receipt)
    }

    /// Mints `amount` test tokens to `to`.
    pub async fn mint(&self, to: Address, amount: U256) -> Result<(), DemoError> {
        let token = TestStablecoin::new(self.token.address, &self.provider);
        self.mined("mint", token.mint(to, amount).send().await).await.map(drop)
    }

    /// The token balance of `who`.
    pub async fn balance(&self, who: Address) -> Result<U256, DemoError> {
        TestStablecoin::new(self.token.address, &self.provider)
            .balanceOf(who)
            .call()
            .await
            .map_err(err("balance"))
    }

    /// The latest block's timestamp.
    pub async fn now(&self) -> Result<u64, DemoError> {
        x402_chain::block::time(&self.provider).await.map_err(|e| DemoError(format!("RPC: {e}")))
    }

    /// Moves chain time forward by `seconds` and mines a block.
    pub async fn advance(&self, seconds: u64) -> Result<(), DemoError> {
        let rpc = |e: alloy::transports::TransportError| DemoError(format!("RPC: {e}"));
        self.provider.raw_request::<_, Value>("evm_increaseTime".into(), (seconds,)).await.map_err(rpc)?;
        self.provider.raw_request::<_, Value>("evm_mine".into(), ()).await.map_err(rpc)?;
        Ok(())
    }

    /// `subscriber` approves the Subscription contract without limit (once) and subscribes to pay `recipient` `amount`
    /// every `period` seconds from now; returns the subscription id.
    pub async fn subscribe(
        &self,
        subscriber: Address,
        recipient: Address,
        amount: U256,
        period: u64,
    ) -> Result<U256, DemoError> {
        let token = TestStablecoin::new(self.token.address, &self.provider);
        self.mined(
            "approve",
            token.approve(self.contracts.subscription, U256::MAX).from(subscriber).send().await,
        )
        .await?;
        let subscriptions = Subscription::new(self.contracts.subscription, &self.provider);
        let terms = ISubscription::Terms {
            recipient,
            token: self.token.address,
            amount,
            period: U256::from(period),
            startTime: U256::ZERO,
            endsAt: U256::ZERO,
            maxCount: U256::ZERO,
        };
        let receipt = self
            .mined(
                "createSubscription",
                subscriptions.createSubscription(terms, U256::ZERO).from(subscriber).send().await,
            )
            .await?;
        let created = receipt
            .decoded_log::<Subscription::SubscriptionCreated>()
            .ok_or_else(|| DemoError("no SubscriptionCreated event".into()))?;
        Ok(created.subscriptionId)
    }

    /// `payer` opens a channel to `recipient` with `deposit`, a `challenge`-second challenge period and no
    /// expiry beyond it; returns the channel id.
    pub async fn open_channel(
        &self,
        payer: Address,
        recipient: Address,
        deposit: U256,
        challenge: u64,
    ) -> Result<B256, DemoError> {
        self.open_channel_for(payer, recipient, deposit, challenge, 60).await
    }

    /// [`Self::open_channel`], the channel expiring `lifetime` seconds from now.
    pub async fn open_channel_for(
        &self,
        payer: Address,
        recipient: Address,
        deposit: U256,
        challenge: u64,
        lifetime: u64,
    ) -> Result<B256, DemoError> {
        let token = TestStablecoin::new(self.token.address, &self.provider);
        self.mined(
            "approve",
            token.approve(self.contracts.payment_channel, deposit).from(payer).send().await,
        )
        .await?;
        let channels = PaymentChannel::new(self.contracts.payment_channel, &self.provider);
        // The payer's transaction count makes the salt unique, also for two channels opened in one second.
        let sent = self
            .provider
            .get_transaction_count(payer)
            .await
            .map_err(|e| DemoError(format!("getTransactionCount: {e}")))?;
        let salt = keccak256([self.now().await?.to_be_bytes(), sent.to_be_bytes()].concat());
        let expires_at = U256::from(self.now().await? + lifetime);
        self.mined(
            "openChannel",
            channels
                .openChannel(salt, recipient, self.token.address, deposit, expires_at, U256::from(challenge))
                .from(payer)
                .send()
                .await,
        )
        .await?;
        Ok(voucher::channel_id(payer, salt))
    }

    /// `recipient` lets `operator` (the keeper) claim its channels.
    pub async fn approve_claim_operator(
        &self,
        recipient: Address,
        operator: Address,
    ) -> Result<(), DemoError> {
        let channels = PaymentChannel::new(self.contracts.payment_channel, &self.provider);
        self.mined("setClaimOperator", channels.setClaimOperator(operator, true).from(recipient).send().await)
            .await
            .map(drop)
    }

    /// `payer` starts a unilateral close of `channel`.
    pub async fn start_close(&self, payer: Address, channel: B256) -> Result<(), DemoError> {
        let channels = PaymentChannel::new(self.contracts.payment_channel, &self.provider);
        self.mined("startClose", channels.startClose(channel).from(payer).send().await).await.map(drop)
    }

    /// The channel's status (1 open, 2 closing, 3 closed) and claimed amount.
    pub async fn channel(&self, channel: B256) -> Result<(u8, U256), DemoError> {
        let channels = PaymentChannel::new(self.contracts.payment_channel, &self.provider);
        let c = channels.getChannel(channel).call().await.map_err(err("getChannel"))?;
        Ok((c.status, U256::from(c.claimed)))
    }

    /// A voucher for `amount` in total on `channel`, signed by `payer`, as `POST /vouchers` takes it.
    pub async fn voucher(
        &self,
        payer: &PrivateKeySigner,
        channel: B256,
        amount: U256,
    ) -> Result<Value, DemoError> {
        let domain = voucher::domain(self.chain_id, self.contracts.payment_channel);
        let signature: Bytes = voucher::sign(payer, &domain, channel, amount)
            .await
            .map_err(|e| DemoError(format!("sign: {e}")))?;
        Ok(serde_json::json!({"channelId": channel, "amount": amount.to_string(), "signature": signature}))
    }

    /// An x402 payment of `value` from `payer` to `to`, valid for an hour from chain time `now`, with a nonce
    /// derived from `salt`, as `POST /payments` takes it.
    pub fn payment(
        &self,
        payer: &PrivateKeySigner,
        to: Address,
        value: U256,
        now: u64,
        salt: &[u8],
    ) -> Result<Value, DemoError> {
        let terms = ExactTerms {
            to,
            value,
            valid_after: now.saturating_sub(60),
            valid_before: now + 3600,
            nonce: keccak256([payer.address().as_slice(), salt].concat()),
        };
        signed_request(payer, payer.address(), &self.token, self.chain_id, terms)
            .map_err(|e| DemoError(format!("sign: {e}")))
    }

    /// The same payment as [`Demo::payment`] in the shape an x402 v1 client sends (network by name, the amount as
    /// `maxAmountRequired`), or `None` when the chain has no v1 name (see [`v1_name`]).
    pub fn payment_v1(
        &self,
        payer: &PrivateKeySigner,
        to: Address,
        value: U256,
        now: u64,
        salt: &[u8],
    ) -> Result<Option<Value>, DemoError> {
        let Some(network) = v1_name(self.chain_id) else { return Ok(None) };
        let v2 = self.payment(payer, to, value, now, salt)?;
        let requirements = serde_json::json!({
            "scheme": "exact",
            "network": network,
            "maxAmountRequired": value.to_string(),
            "resource": "http://127.0.0.1/demo",
            "description": "x402 devnet demo",
            "mimeType": "application/json",
            "payTo": to.to_string(),
            "maxTimeoutSeconds": 3600,
            "asset": self.token.address.to_string(),
            "extra": {"name": self.token.name, "version": self.token.version},
        });
        Ok(Some(serde_json::json!({
            "x402Version": 1,
            "paymentPayload": {
                "x402Version": 1,
                "scheme": "exact",
                "network": network,
                "payload": v2["paymentPayload"]["payload"],
            },
            "paymentRequirements": requirements,
        })))
    }

    /// Gas of one standalone `transferWithAuthorization` transaction (what a facilitator sends per payment),
    /// sent by `relayer` for a fresh authorization of `payer` paying [`STANDALONE_VALUE`] to `to`. Pay a `to` that
    /// already holds tokens, as batched payments to a merchant do: a first credit costs about 17k gas more.
    pub async fn standalone_transfer_gas(
        &self,
        relayer: Address,
        payer: &PrivateKeySigner,
        to: Address,
    ) -> Result<u64, DemoError> {
        let now = self.now().await?;
        let value = U256::from(STANDALONE_VALUE);
        let nonce = keccak256([payer.address().as_slice(), b"standalone", &now.to_be_bytes()].concat());
        let authorization = x402_bindings::eip3009::TransferWithAuthorization {
            from: payer.address(),
            to,
            value,
            validAfter: U256::ZERO,
            validBefore: U256::from(now + 3600),
            nonce,
        };
        let signature =
            x402_bindings::eip3009::sign(payer, &domain_of(&self.token, self.chain_id), &authorization)
                .await
                .map_err(|e| DemoError(format!("sign: {e}")))?;
        let token = TestStablecoin::new(self.token.address, &self.provider);
        // The v/r/s overload, the cheaper one (what settleBatch calls for 65-byte signatures).
        let (r, s, v) =
            (B256::from_slice(&signature[..32]), B256::from_slice(&signature[32..64]), signature[64]);
        let call = token.transferWithAuthorization_1(
            authorization.from,
            to,
            value,
            authorization.validAfter,
            authorization.validBefore,
            nonce,
            v,
            r,
            s,
        );
        let receipt = self.mined("transferWithAuthorization", call.from(relayer).send().await).await?;
        Ok(receipt.gas_used)
    }
}
