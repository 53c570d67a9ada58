// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICreditSystem} from "./interfaces/ICreditSystem.sol";
import {IToolRegistry} from "./interfaces/IToolRegistry.sol";
import {EIP3009Calls} from "./libraries/EIP3009Calls.sol";
import {ExactTransfers} from "./libraries/ExactTransfers.sol";
import {SplitMath} from "./libraries/SplitMath.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title CreditSystem
/// @notice Prepaid credits for ToolRegistry tools. Spending moves credits from the user to the tool's pending
/// developer and platform amounts (split at the fee in force) in storage only; `settle` later hands the pending
/// amounts of many tools to the registry in one transfer.
/// @dev Tokens held == sum of principal + sum of bonus credits + bonus pools + pending tool amounts. No role can
/// move principal, granted bonus credits or pending amounts anywhere but to their owners or the registry, and no
/// fee change moves a pending amount between developer and platform; the bonus manager can only take back bonus
/// pool funds nobody was granted. The tool terms and the platform fee here are copies the registry keeps exact on
/// every change, so that {payWithCredits} reads four storage slots, writes two and calls nothing (the first spend after
/// an upgrade from an implementation without the fee copy reads the fee from the registry once).
/// Pausing stops new money coming in (deposits, bonus funding); spending credits already here, settlement and
/// withdrawals keep working, as everywhere in this system.
contract CreditSystem is
    ICreditSystem,
    UUPSUpgradeable,
    AccessControlUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardTransientUpgradeable
{
    using SafeERC20 for IERC20;

    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May fund and defund bonus pools and set bonus policies.
    bytes32 public constant BONUS_MANAGER_ROLE = keccak256("BONUS_MANAGER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Highest bonus rate: 50% of a deposit.
    uint16 public constant MAX_BONUS_BPS = 5000;

    /// @dev One slot: what {payWithCredits} reads and writes for the tool.
    struct ToolTerms {
        uint96 price;
        uint16 tokenIndex;
        uint32 pendingCalls;
        uint112 pendingAmount;
    }

    /// @dev One slot per user and token.
    struct Credits {
        uint128 principal;
        uint128 bonus;
    }

    struct BonusPolicy {
        uint16 bonusBps;
        uint128 minDeposit;
    }

    /// @dev One slot: a tool's credit spends since its last settlement, split when they were made. `opened` stays set
    /// after a settlement, so the next spend rewrites a live slot instead of creating one.
    struct ToolLedger {
        uint96 pendingDeveloper;
        uint96 pendingPlatform;
        uint32 pendingCalls;
        bool opened;
    }

    /// @dev The registry's platform fee as last pushed; `synced` is false until the first sync (also right after an
    /// upgrade from an implementation that kept no copy), and the registry is then asked.
    struct FeeCopy {
        bool synced;
        uint16 feeBps;
    }

    /// @custom:storage-location erc7201:x402.storage.CreditSystem
    struct CreditSystemStorage {
        address registry;
        // Tokens are numbered from 1 so that tool terms fit one slot; 0 means "none".
        address[] tokens;
        mapping(address token => uint16) tokenIndex;
        mapping(uint256 toolId => ToolTerms) tools;
        mapping(address user => mapping(uint256 tokenIndex => Credits)) credits;
        mapping(uint256 tokenIndex => uint256) bonusPools;
        mapping(uint256 tokenIndex => BonusPolicy) bonusPolicies;
        // Since version 2 spends are split when made and accrue here; the pending fields of `tools` hold only
        // spends made under version 1, which are split at the fee in force when they are settled.
        mapping(uint256 toolId => ToolLedger) ledgers;
        FeeCopy platformFee;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.CreditSystem")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant CREDIT_SYSTEM_STORAGE_LOCATION =
        0x6be724ddb9c1211f2b014520d6463d08952f8f8cbfbbefd56d2f5b8edfab3c00;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE, BONUS_MANAGER_ROLE and UPGRADER_ROLE.
    /// @param registry_ The ToolRegistry whose tools credits pay for; it must wire this contract with
    /// `setCreditSystem`.
    function initialize(address admin, address registry_) external initializer {
        if (admin == address(0) || registry_ == address(0)) revert CreditSystemZeroAddress();
        __AccessControl_init();
        __Pausable_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(BONUS_MANAGER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _getCreditSystemStorage().registry = registry_;
        emit RegistrySet(registry_);
    }

    /*//////////////////////////////////////////////////////////////
                                DEPOSITS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICreditSystem
    function deposit(address token, uint256 amount) external whenNotPaused nonReentrant {
        uint16 index = _acceptedToken(token);
        _requireAmount(amount);
        _credit(msg.sender, token, index, amount);
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc ICreditSystem
    function depositWithPermit(address token, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
        nonReentrant
    {
        uint16 index = _acceptedToken(token);
        _requireAmount(amount);
        ExactTransfers.permit(token, msg.sender, amount, deadline, v, r, s);
        _credit(msg.sender, token, index, amount);
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc ICreditSystem
    function depositWithAuthorization(
        address token,
        address from,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external whenNotPaused nonReentrant {
        uint16 index = _acceptedToken(token);
        _requireAmount(amount);
        _credit(from, token, index, amount);
        ExactTransfers.receiveExact(
            token, EIP3009Calls.Authorization(from, address(this), amount, validAfter, validBefore, nonce), signature
        );
    }

    /// @inheritdoc ICreditSystem
    function withdraw(address token, uint256 amount, address to) external nonReentrant {
        if (to == address(0)) revert CreditSystemZeroAddress();
        if (amount == 0) revert CreditSystemZeroAmount();
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        uint16 index = $.tokenIndex[token];
        Credits storage account = $.credits[msg.sender][index];
        Credits memory credits = account;
        uint256 principal = credits.principal;
        if (amount > principal) revert CreditSystemInsufficientPrincipal(principal, amount);
        // Bonus credits were granted for principal staying in; the share that leaves forfeits its share of the
        // bonus (rounded up), which goes back to the pool. Without this, deposit-and-withdraw would harvest it.
        uint256 forfeited = credits.bonus == 0 ? 0 : Math.mulDiv(credits.bonus, amount, principal, Math.Rounding.Ceil);
        // amount <= principal and forfeited <= bonus, so both differences fit their 128-bit fields.
        _storeCredits(account, principal - amount, credits.bonus - forfeited);
        if (forfeited != 0) {
            $.bonusPools[index] += forfeited;
            emit BonusForfeited(msg.sender, token, forfeited);
        }
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /*//////////////////////////////////////////////////////////////
                                SPENDING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICreditSystem
    function payWithCredits(uint256 toolId, uint256 maxPrice) external {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        ToolTerms memory terms = $.tools[toolId];
        uint256 price = terms.price;
        if (price == 0) revert CreditSystemToolNotPayable(toolId);
        if (price > maxPrice) revert CreditSystemPriceAboveMax(toolId, price, maxPrice);
        (uint256 developerShare, uint256 platformShare) = SplitMath.splitFee(price, _platformFeeBps($));

        uint256 bonusUsed = _debit($, terms.tokenIndex, price, platformShare);
        // Checked: a tool whose pending spends no longer fit must be settled first.
        ToolLedger storage ledger = $.ledgers[toolId];
        ToolLedger memory pending = ledger;
        _storeLedger(
            ledger,
            pending.pendingDeveloper + developerShare,
            pending.pendingPlatform + platformShare,
            pending.pendingCalls + 1
        );
        emit CreditsSpent(msg.sender, toolId, price, bonusUsed);
    }

    /// @inheritdoc ICreditSystem
    function settle(address token, uint256[] calldata toolIds) external nonReentrant {
        uint256 count = toolIds.length;
        if (count == 0) revert CreditSystemEmptyBatch();
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        uint16 index = $.tokenIndex[token];
        IToolRegistry.CreditPayment[] memory payments = new IToolRegistry.CreditPayment[](count);
        uint256 settled;
        uint256 total;
        for (uint256 i; i < count; ++i) {
            uint256 toolId = toolIds[i];
            ToolTerms memory terms = $.tools[toolId];
            if (index == 0 || terms.tokenIndex != index) revert CreditSystemTokenMismatch(toolId, token);
            IToolRegistry.CreditPayment memory payment = _takePending($, toolId, terms);
            if (payment.calls == 0) continue;
            payments[settled++] = payment;
            total += payment.developerAmount + payment.platformAmount;
        }
        if (settled == 0) revert CreditSystemNothingToSettle();
        assembly ("memory-safe") {
            // Drop the tools that had nothing pending.
            mstore(payments, settled)
        }
        emit CreditsSettled(token, settled, total);
        address registry_ = $.registry;
        IERC20(token).forceApprove(registry_, total);
        IToolRegistry(registry_).recordCreditPayments(token, payments);
    }

    /// @inheritdoc ICreditSystem
    function syncPlatformFee() external {
        _syncPlatformFee(_getCreditSystemStorage());
    }

    /// @inheritdoc ICreditSystem
    function syncTool(uint256 toolId, address token, uint96 price) external {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        if (msg.sender != $.registry) revert CreditSystemNotRegistry(msg.sender);
        uint16 index = _indexOf($, token);
        ToolTerms memory terms = $.tools[toolId];
        // Pending spends are denominated in the tool's token, which therefore never changes.
        if (terms.tokenIndex != 0 && terms.tokenIndex != index) revert CreditSystemTokenMismatch(toolId, token);
        $.tools[toolId] = ToolTerms({
            price: price, tokenIndex: index, pendingCalls: terms.pendingCalls, pendingAmount: terms.pendingAmount
        });
        emit ToolTermsSynced(toolId, token, price);
    }

    /*//////////////////////////////////////////////////////////////
                                 BONUS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICreditSystem
    function fundBonusPool(address token, uint256 amount)
        external
        onlyRole(BONUS_MANAGER_ROLE)
        whenNotPaused
        nonReentrant
    {
        uint16 index = _acceptedToken(token);
        if (amount == 0) revert CreditSystemZeroAmount();
        _getCreditSystemStorage().bonusPools[index] += amount;
        emit BonusPoolFunded(token, msg.sender, amount);
        ExactTransfers.pullExact(token, msg.sender, amount);
    }

    /// @inheritdoc ICreditSystem
    function defundBonusPool(address token, uint256 amount, address to)
        external
        onlyRole(BONUS_MANAGER_ROLE)
        nonReentrant
    {
        if (to == address(0)) revert CreditSystemZeroAddress();
        if (amount == 0) revert CreditSystemZeroAmount();
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        uint16 index = $.tokenIndex[token];
        uint256 pool = $.bonusPools[index];
        if (index == 0 || amount > pool) revert CreditSystemBonusPoolShort(pool, amount);
        $.bonusPools[index] = pool - amount;
        emit BonusPoolDefunded(token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc ICreditSystem
    function setBonusPolicy(address token, uint16 bonusBps, uint256 minDeposit) external onlyRole(BONUS_MANAGER_ROLE) {
        if (bonusBps > MAX_BONUS_BPS) revert CreditSystemBonusTooHigh(bonusBps, MAX_BONUS_BPS);
        if (minDeposit > type(uint128).max) revert CreditSystemAmountTooLarge(minDeposit);
        uint16 index = _acceptedToken(token);
        // forge-lint: disable-next-line(unsafe-typecast)
        _getCreditSystemStorage().bonusPolicies[index] = BonusPolicy(bonusBps, uint128(minDeposit)); // checked above
        emit BonusPolicyUpdated(token, bonusBps, minDeposit);
    }

    /// @inheritdoc ICreditSystem
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @inheritdoc ICreditSystem
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ICreditSystem
    function creditsOf(address user, address token) external view returns (uint256 principal, uint256 bonus) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        Credits memory credits = $.credits[user][$.tokenIndex[token]];
        return (credits.principal, credits.bonus);
    }

    /// @inheritdoc ICreditSystem
    function bonusPool(address token) external view returns (uint256) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        uint16 index = $.tokenIndex[token];
        return index == 0 ? 0 : $.bonusPools[index];
    }

    /// @inheritdoc ICreditSystem
    function bonusPolicy(address token) external view returns (uint16 bonusBps, uint256 minDeposit) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        uint16 index = $.tokenIndex[token];
        if (index == 0) return (0, 0);
        BonusPolicy memory policy = $.bonusPolicies[index];
        return (policy.bonusBps, policy.minDeposit);
    }

    /// @inheritdoc ICreditSystem
    function toolTerms(uint256 toolId)
        external
        view
        returns (address token, uint96 price, uint256 pendingCalls, uint256 pendingAmount)
    {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        ToolTerms memory terms = $.tools[toolId];
        token = terms.tokenIndex == 0 ? address(0) : $.tokens[terms.tokenIndex - 1];
        ToolLedger memory ledger = $.ledgers[toolId];
        pendingCalls = uint256(terms.pendingCalls) + ledger.pendingCalls;
        pendingAmount = uint256(terms.pendingAmount) + ledger.pendingDeveloper + ledger.pendingPlatform;
        return (token, terms.price, pendingCalls, pendingAmount);
    }

    /// @inheritdoc ICreditSystem
    function pendingShares(uint256 toolId) external view returns (uint256 developer, uint256 platform) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        ToolLedger memory ledger = $.ledgers[toolId];
        (developer, platform) = SplitMath.splitFee($.tools[toolId].pendingAmount, platformFeeBps());
        developer += ledger.pendingDeveloper;
        platform += ledger.pendingPlatform;
    }

    /// @inheritdoc ICreditSystem
    function platformFeeBps() public view returns (uint16) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        FeeCopy memory copy = $.platformFee;
        return copy.synced ? copy.feeBps : IToolRegistry($.registry).platformFeeBps();
    }

    /// @inheritdoc ICreditSystem
    function registry() external view returns (address) {
        return _getCreditSystemStorage().registry;
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Credits a deposit and grants the bonus it earns, capped by what is left in the pool.
    function _credit(address user, address token, uint16 index, uint256 amount) private {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        BonusPolicy memory policy = $.bonusPolicies[index];
        uint256 bonus;
        if (policy.bonusBps != 0 && amount >= policy.minDeposit) {
            bonus = amount * _effectiveBonusBps($, policy.bonusBps) / 10_000;
            uint256 pool = $.bonusPools[index];
            if (bonus > pool) bonus = pool;
            if (bonus != 0) $.bonusPools[index] = pool - bonus;
        }
        Credits memory credits = $.credits[user][index];
        uint256 principal = uint256(credits.principal) + amount;
        uint256 bonusCredits = uint256(credits.bonus) + bonus;
        if (principal > type(uint128).max) revert CreditSystemAmountTooLarge(principal);
        if (bonusCredits > type(uint128).max) revert CreditSystemAmountTooLarge(bonusCredits);
        // forge-lint: disable-next-line(unsafe-typecast)
        $.credits[user][index] = Credits(uint128(principal), uint128(bonusCredits)); // both checked above
        emit Deposited(user, token, amount, bonus);
    }

    /// @dev The bonus rate actually granted: the policy's, capped at fee / (1 - fee) of the platform fee in force,
    /// the most of a deposit's bonus that spends at this fee can use (a spend's bonus part is at most the fee on it).
    function _effectiveBonusBps(CreditSystemStorage storage $, uint256 bonusBps) private returns (uint256) {
        uint256 feeBps = _platformFeeBps($);
        uint256 cap = feeBps * 10_000 / (10_000 - feeBps);
        return bonusBps < cap ? bonusBps : cap;
    }

    /// @dev One SSTORE of the packed {Credits} slot: principal in the low 128 bits, bonus in the high 128 bits.
    /// Callers guarantee both values fit 128 bits.
    function _storeCredits(Credits storage account, uint256 principal, uint256 bonus) private {
        assembly ("memory-safe") {
            sstore(account.slot, or(principal, shl(128, bonus)))
        }
    }

    /// @dev Takes `price` from the caller's credits in `tokenIndex`. Bonus and principal are spent in proportion
    /// (rounding favours the bonus pool), so bonus credits never run ahead of the principal they were granted for.
    /// The bonus is the platform's money: it pays at most `platformShare`, so the developer's share always comes out
    /// of principal and spending credits on a tool of one's own never returns more than the principal, whatever the
    /// fee did since the deposit. Bonus credits only pay alongside principal; what is left once the principal is
    /// spent could never be spent or withdrawn, so it goes back to the pool (as a withdrawal of the last principal
    /// would send it). Returns the bonus used.
    function _debit(CreditSystemStorage storage $, uint16 tokenIndex, uint256 price, uint256 platformShare)
        private
        returns (uint256 bonusUsed)
    {
        Credits storage account = $.credits[msg.sender][tokenIndex];
        Credits memory credits = account;
        uint256 principal = credits.principal;
        bonusUsed = credits.bonus == 0 ? 0 : price * credits.bonus / (principal + credits.bonus);
        if (bonusUsed > platformShare) bonusUsed = platformShare;
        uint256 fromPrincipal = price - bonusUsed;
        if (fromPrincipal > principal) revert CreditSystemInsufficientCredits(principal + bonusUsed, price);
        uint256 bonusLeft = credits.bonus - bonusUsed;
        uint256 forfeited = fromPrincipal == principal ? bonusLeft : 0;
        _storeCredits(account, principal - fromPrincipal, bonusLeft - forfeited);
        if (forfeited != 0) {
            $.bonusPools[tokenIndex] += forfeited;
            emit BonusForfeited(msg.sender, $.tokens[tokenIndex - 1], forfeited);
        }
    }

    /// @dev Takes what `toolId` has pending (its ledger, and spends an earlier implementation left in its terms, split
    /// at the current fee) and clears it.
    function _takePending(CreditSystemStorage storage $, uint256 toolId, ToolTerms memory terms)
        private
        returns (IToolRegistry.CreditPayment memory payment)
    {
        ToolLedger memory ledger = $.ledgers[toolId];
        payment.toolId = toolId;
        payment.calls = uint256(terms.pendingCalls) + ledger.pendingCalls;
        payment.developerAmount = ledger.pendingDeveloper;
        payment.platformAmount = ledger.pendingPlatform;
        if (terms.pendingCalls != 0) {
            (uint256 developer, uint256 platform) = SplitMath.splitFee(terms.pendingAmount, _platformFeeBps($));
            payment.developerAmount += developer;
            payment.platformAmount += platform;
            _storeTerms($.tools[toolId], terms.price, terms.tokenIndex, 0, 0);
        }
        if (ledger.pendingCalls != 0) _storeLedger($.ledgers[toolId], 0, 0, 0);
    }

    /// @dev The platform fee spends are split at: the copy, or the registry's on first use.
    function _platformFeeBps(CreditSystemStorage storage $) private returns (uint16) {
        FeeCopy memory copy = $.platformFee;
        return copy.synced ? copy.feeBps : _syncPlatformFee($);
    }

    function _syncPlatformFee(CreditSystemStorage storage $) private returns (uint16 feeBps) {
        feeBps = IToolRegistry($.registry).platformFeeBps();
        $.platformFee = FeeCopy({synced: true, feeBps: feeBps});
        emit PlatformFeeSynced(feeBps);
    }

    /// @dev One SSTORE of the packed {ToolLedger} slot (pendingDeveloper: bits 0-95, pendingPlatform: 96-191,
    /// pendingCalls: 192-223, opened: 224), reverting if a counter outgrows its field.
    function _storeLedger(ToolLedger storage ledger, uint256 developer, uint256 platform, uint256 calls) private {
        // Each share stays within what one registry record can take (uint96), so settlement always fits.
        if (calls > type(uint32).max || developer > type(uint96).max || platform > type(uint96).max) {
            revert CreditSystemPendingOverflow(calls, developer + platform);
        }
        assembly ("memory-safe") {
            sstore(ledger.slot, or(or(developer, shl(96, platform)), or(shl(192, calls), shl(224, 1))))
        }
    }

    /// @dev One SSTORE of the packed {ToolTerms} slot (price: bits 0-95, tokenIndex: 96-111, pendingCalls:
    /// 112-143, pendingAmount: 144-255), reverting if the pending counters outgrow their fields.
    function _storeTerms(
        ToolTerms storage tool,
        uint256 price,
        uint256 tokenIndex,
        uint256 pendingCalls,
        uint256 pendingAmount
    ) private {
        // Pending amounts stay within what one registry record can take (uint96), so settlement always fits.
        if (pendingCalls > type(uint32).max || pendingAmount > type(uint96).max) {
            revert CreditSystemPendingOverflow(pendingCalls, pendingAmount);
        }
        assembly ("memory-safe") {
            sstore(tool.slot, or(or(price, shl(96, tokenIndex)), or(shl(112, pendingCalls), shl(144, pendingAmount))))
        }
    }

    function _requireAmount(uint256 amount) private pure {
        if (amount == 0) revert CreditSystemZeroAmount();
        if (amount > type(uint128).max) revert CreditSystemAmountTooLarge(amount);
    }

    /// @dev The token's index, numbering it on first use; only tokens the registry allowlists are accepted.
    function _acceptedToken(address token) private returns (uint16) {
        CreditSystemStorage storage $ = _getCreditSystemStorage();
        if (!IToolRegistry($.registry).isTokenAllowed(token)) revert CreditSystemTokenNotAccepted(token);
        return _indexOf($, token);
    }

    function _indexOf(CreditSystemStorage storage $, address token) private returns (uint16 index) {
        index = $.tokenIndex[token];
        if (index != 0) return index;
        if (token == address(0)) revert CreditSystemZeroAddress();
        uint256 count = $.tokens.length;
        if (count == type(uint16).max) revert CreditSystemTooManyTokens();
        $.tokens.push(token);
        // forge-lint: disable-next-line(unsafe-typecast)
        index = uint16(count + 1); // count < type(uint16).max was checked above
        $.tokenIndex[token] = index;
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _getCreditSystemStorage() private pure returns (CreditSystemStorage storage $) {
        assembly ("memory-safe") {
            $.slot := CREDIT_SYSTEM_STORAGE_LOCATION
        }
    }
}
