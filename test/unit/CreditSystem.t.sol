// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ICreditSystem} from "../../contracts/interfaces/ICreditSystem.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {MockERC1271Wallet} from "../mocks/MockERC1271Wallet.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

contract CreditSystemTest is ToolsFixture {
    uint256 internal toolId;

    function setUp() public override {
        super.setUp();
        toolId = registerTool("weather");
        usdc.mint(admin, 1_000_000e6);
        vm.prank(admin);
        usdc.approve(address(credits), type(uint256).max);
    }

    function _credits(address account) internal view returns (uint256 principal, uint256 bonus) {
        return credits.creditsOf(account, address(usdc));
    }

    function _fundBonus(uint256 amount, uint16 bps, uint256 minDeposit) internal {
        vm.startPrank(admin);
        credits.fundBonusPool(address(usdc), amount);
        credits.setBonusPolicy(address(usdc), bps, minDeposit);
        vm.stopPrank();
    }

    function _spend() internal {
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
    }

    function _receiveSignature(uint256 key, address from, uint256 amount, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
                from,
                address(credits),
                amount,
                block.timestamp - 1,
                block.timestamp + 1 hours,
                nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    /*//////////////////////////////////////////////////////////////
                               INITIALIZE
    //////////////////////////////////////////////////////////////*/

    function test_Initialize() public view {
        assertEq(credits.registry(), address(registry));
        assertTrue(credits.hasRole(credits.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(credits.hasRole(credits.BONUS_MANAGER_ROLE(), admin));
        assertTrue(credits.hasRole(credits.PAUSER_ROLE(), admin));
        assertTrue(credits.hasRole(credits.UPGRADER_ROLE(), admin));
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        credits.initialize(stranger, stranger);
    }

    function test_RevertWhen_ImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        CreditSystem(deployment.creditSystemImplementation).initialize(stranger, stranger);
    }

    function test_RevertWhen_InitializeWithZeroRegistry() public {
        address implementation = address(new CreditSystem());
        vm.expectRevert(ICreditSystem.CreditSystemZeroAddress.selector);
        new ERC1967Proxy(implementation, abi.encodeCall(CreditSystem.initialize, (admin, address(0))));
    }

    /*//////////////////////////////////////////////////////////////
                                DEPOSIT
    //////////////////////////////////////////////////////////////*/

    function test_Deposit() public {
        vm.expectEmit(address(credits));
        emit ICreditSystem.Deposited(user, address(usdc), 5e6, 0);
        depositCredits(5e6);
        (uint256 principal, uint256 bonus) = _credits(user);
        assertEq(principal, 5e6);
        assertEq(bonus, 0);
        assertEq(usdc.balanceOf(address(credits)), 5e6);
    }

    function test_Deposit_OneUnitOfSixDecimalToken() public {
        depositCredits(1); // 0.000001 USDC: no minimum that assumes 18 decimals
        (uint256 principal,) = _credits(user);
        assertEq(principal, 1);
    }

    function test_WhenBonusPolicySet_DepositGrantsBonusFromPool() public {
        _fundBonus(100e6, 1000, 10e6); // 10% on deposits of 10 USDC or more
        vm.expectEmit(address(credits));
        emit ICreditSystem.Deposited(user, address(usdc), 50e6, 5e6);
        depositCredits(50e6);
        (uint256 principal, uint256 bonus) = _credits(user);
        assertEq(principal, 50e6);
        assertEq(bonus, 5e6);
        assertEq(credits.bonusPool(address(usdc)), 95e6);
    }

    function test_WhenDepositBelowMinimum_NoBonus() public {
        _fundBonus(100e6, 1000, 10e6);
        depositCredits(10e6 - 1);
        (, uint256 bonus) = _credits(user);
        assertEq(bonus, 0);
    }

    function test_WhenBonusPoolRunsShort_BonusIsCapped() public {
        _fundBonus(3e6, 1000, 0);
        depositCredits(50e6);
        (, uint256 bonus) = _credits(user);
        assertEq(bonus, 3e6);
        assertEq(credits.bonusPool(address(usdc)), 0);
        depositCredits(50e6);
        (, bonus) = _credits(user);
        assertEq(bonus, 3e6, "an empty pool grants nothing");
    }

    function test_RevertWhen_DepositZero() public {
        vm.prank(user);
        vm.expectRevert(ICreditSystem.CreditSystemZeroAmount.selector);
        credits.deposit(address(usdc), 0);
    }

    function test_RevertWhen_DepositTooLarge() public {
        uint256 amount = uint256(type(uint128).max) + 1;
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemAmountTooLarge.selector, amount));
        credits.deposit(address(usdc), amount);
    }

    function test_RevertWhen_DepositTokenNotAllowlisted() public {
        address other = address(new TestStablecoin("X", "X", "1", address(this)));
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemTokenNotAccepted.selector, other));
        credits.deposit(other, 1);
    }

    function test_RevertWhen_DepositWhilePaused() public {
        vm.prank(admin);
        credits.pause();
        vm.prank(user);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        credits.deposit(address(usdc), 1);
    }

    function test_RevertWhen_DepositTokenChargesTransferFee() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        vm.prank(admin);
        registry.setTokenAllowed(address(fee), true);
        fee.mint(user, 1000);
        vm.startPrank(user);
        fee.approve(address(credits), 1000);
        vm.expectRevert(abi.encodeWithSelector(ExactTransfers.ExactTransferMismatch.selector, address(fee), 1000, 990));
        credits.deposit(address(fee), 1000);
        vm.stopPrank();
    }

    function test_DepositWithPermit() public {
        uint256 deadline = block.timestamp + 60;
        bytes32 structHash =
            keccak256(abi.encode(usdc.PERMIT_TYPEHASH(), user, address(credits), 7e6, usdc.nonces(user), deadline));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(userKey, keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
        vm.startPrank(user);
        usdc.approve(address(credits), 0);
        credits.depositWithPermit(address(usdc), 7e6, deadline, v, r, s);
        vm.stopPrank();
        (uint256 principal,) = _credits(user);
        assertEq(principal, 7e6);
    }

    function test_RevertWhen_PermitInvalidAndAllowanceShort() public {
        vm.startPrank(user);
        usdc.approve(address(credits), 0);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, user));
        credits.depositWithPermit(address(usdc), 7e6, block.timestamp + 60, 27, bytes32(uint256(1)), bytes32(0));
        vm.stopPrank();
    }

    function test_DepositWithAuthorization_CreditsTheSigner() public {
        bytes memory sig = _receiveSignature(userKey, user, 9e6, "n1");
        vm.prank(stranger); // a relayer submits; the credits still go to the signer
        credits.depositWithAuthorization(
            address(usdc), user, 9e6, block.timestamp - 1, block.timestamp + 1 hours, "n1", sig
        );
        (uint256 principal,) = _credits(user);
        assertEq(principal, 9e6);
        (uint256 strangerPrincipal,) = _credits(stranger);
        assertEq(strangerPrincipal, 0);
    }

    function test_DepositWithAuthorization_ContractWallet() public {
        (address owner, uint256 ownerKey) = makeAddrAndKey("walletOwner");
        address wallet = address(new MockERC1271Wallet(owner));
        usdc.mint(wallet, 9e6);
        bytes memory sig = _receiveSignature(ownerKey, wallet, 9e6, "n1");
        credits.depositWithAuthorization(
            address(usdc),
            wallet,
            9e6,
            block.timestamp - 1,
            block.timestamp + 1 hours,
            "n1",
            abi.encodePacked(sig, hex"00")
        );
        (uint256 principal,) = _credits(wallet);
        assertEq(principal, 9e6);
    }

    function test_RevertWhen_AuthorizationForAnotherAmount() public {
        bytes memory sig = _receiveSignature(userKey, user, 9e6, "n1");
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.TestStablecoinInvalidSignature.selector, user));
        credits.depositWithAuthorization(
            address(usdc), user, 10e6, block.timestamp - 1, block.timestamp + 1 hours, "n1", sig
        );
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_Withdraw() public {
        depositCredits(5e6);
        address wallet = makeAddr("wallet");
        vm.expectEmit(address(credits));
        emit ICreditSystem.Withdrawn(user, address(usdc), wallet, 2e6);
        vm.prank(user);
        credits.withdraw(address(usdc), 2e6, wallet);
        (uint256 principal,) = _credits(user);
        assertEq(principal, 3e6);
        assertEq(usdc.balanceOf(wallet), 2e6);
    }

    function test_WhenPaused_WithdrawSucceeds() public {
        depositCredits(5e6);
        vm.prank(admin);
        credits.pause();
        vm.prank(user);
        credits.withdraw(address(usdc), 5e6, user);
        (uint256 principal,) = _credits(user);
        assertEq(principal, 0);
    }

    function test_RevertWhen_WithdrawMoreThanPrincipal() public {
        _fundBonus(10e6, 5000, 0);
        depositCredits(5e6); // 2.5 USDC of bonus is not withdrawable
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemInsufficientPrincipal.selector, 5e6, 5e6 + 1));
        credits.withdraw(address(usdc), 5e6 + 1, user);
    }

    function test_Withdraw_ForfeitsBonusProRata() public {
        _fundBonus(10e6, 2000, 0);
        depositCredits(10e6); // 2e6 bonus
        vm.expectEmit(address(credits));
        emit ICreditSystem.BonusForfeited(user, address(usdc), 5e5);
        vm.prank(user);
        credits.withdraw(address(usdc), 25e5, user); // a quarter of the principal
        (uint256 principal, uint256 bonus) = _credits(user);
        assertEq(principal, 75e5);
        assertEq(bonus, 15e5);
        assertEq(credits.bonusPool(address(usdc)), 8e6 + 5e5);
        vm.prank(user);
        credits.withdraw(address(usdc), 75e5, user);
        (, bonus) = _credits(user);
        assertEq(bonus, 0, "withdrawing all principal returns all bonus");
        assertEq(credits.bonusPool(address(usdc)), 10e6);
    }

    function test_WhenPolicyExceedsFeeCap_BonusIsCapped() public {
        _fundBonus(100e6, 5000, 0); // 50% asked; fee 20% caps it at 25%
        depositCredits(10e6);
        (, uint256 bonus) = _credits(user);
        assertEq(bonus, 25e5);
        vm.prank(admin);
        registry.setPlatformFee(0);
        depositCredits(10e6);
        (, uint256 bonusAfter) = _credits(user);
        assertEq(bonusAfter, 25e5, "without a platform fee no bonus is safe to grant");
    }

    function test_RevertWhen_WithdrawUnknownToken() public {
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemInsufficientPrincipal.selector, 0, 1));
        credits.withdraw(stranger, 1, user);
    }

    function test_RevertWhen_WithdrawZero() public {
        vm.prank(user);
        vm.expectRevert(ICreditSystem.CreditSystemZeroAmount.selector);
        credits.withdraw(address(usdc), 0, user);
    }

    function test_RevertWhen_WithdrawToZero() public {
        vm.prank(user);
        vm.expectRevert(ICreditSystem.CreditSystemZeroAddress.selector);
        credits.withdraw(address(usdc), 1, address(0));
    }

    /*//////////////////////////////////////////////////////////////
                                 SPEND
    //////////////////////////////////////////////////////////////*/

    function test_PayWithCredits() public {
        depositCredits(10_000);
        uint256 before = usdc.balanceOf(address(credits));
        vm.expectEmit(address(credits));
        emit ICreditSystem.CreditsSpent(user, toolId, PRICE, 0);
        _spend();
        (uint256 principal,) = _credits(user);
        assertEq(principal, 10_000 - PRICE);
        assertEq(usdc.balanceOf(address(credits)), before, "no token moves per call");
        (address token, uint96 price, uint256 calls, uint256 pending) = credits.toolTerms(toolId);
        assertEq(token, address(usdc));
        assertEq(price, PRICE);
        assertEq(calls, 1);
        assertEq(pending, PRICE);
    }

    function test_PayWithCredits_SpendsBonusInProportion() public {
        _fundBonus(1000, 1000, 0);
        depositCredits(10_000); // 1 000 bonus: 1/11 of every spend comes from bonus
        _spend(); // 2 500: floor(2 500 / 11) = 227 bonus, 2 273 principal
        (uint256 principal, uint256 bonus) = _credits(user);
        assertEq(bonus, 1000 - 227);
        assertEq(principal, 10_000 - 2273);
    }

    function test_WhenPaused_PayWithCreditsSucceeds() public {
        depositCredits(10_000);
        vm.prank(admin);
        credits.pause();
        _spend();
        (uint256 principal,) = _credits(user);
        assertEq(principal, 10_000 - PRICE);
    }

    function test_RevertWhen_CreditsInsufficient() public {
        depositCredits(PRICE - 1);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(ICreditSystem.CreditSystemInsufficientCredits.selector, PRICE - 1, PRICE)
        );
        credits.payWithCredits(toolId, PRICE);
    }

    function test_RevertWhen_CreditPriceAboveMax() public {
        depositCredits(10_000);
        vm.prank(developer);
        registry.setPrice(toolId, PRICE + 1);
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(ICreditSystem.CreditSystemPriceAboveMax.selector, toolId, PRICE + 1, PRICE)
        );
        credits.payWithCredits(toolId, PRICE);
    }

    function test_RevertWhen_CreditToolInactive() public {
        depositCredits(10_000);
        vm.prank(developer);
        registry.setActive(toolId, false);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemToolNotPayable.selector, toolId));
        credits.payWithCredits(toolId, PRICE);
    }

    function test_RevertWhen_CreditToolUnknown() public {
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemToolNotPayable.selector, 99));
        credits.payWithCredits(99, PRICE);
    }

    /*//////////////////////////////////////////////////////////////
                                 SETTLE
    //////////////////////////////////////////////////////////////*/

    function test_Settle() public {
        depositCredits(10_000);
        _spend();
        _spend();
        vm.expectEmit(address(credits));
        emit ICreditSystem.CreditsSettled(address(usdc), 1, 2 * PRICE);
        vm.prank(stranger); // anyone
        credits.settle(address(usdc), ids(toolId));
        (,, uint256 calls, uint256 pending) = credits.toolTerms(toolId);
        assertEq(calls, 0);
        assertEq(pending, 0);
        assertEq(usdc.balanceOf(address(credits)), 10_000 - 2 * PRICE);
        assertEq(usdc.balanceOf(address(registry)), 2 * PRICE);
        assertEq(registry.getToolStats(toolId).calls, 2);
    }

    function test_WhenPaused_SettleSucceeds() public {
        depositCredits(10_000);
        _spend();
        vm.prank(admin);
        credits.pause();
        credits.settle(address(usdc), ids(toolId));
        assertEq(usdc.balanceOf(address(registry)), PRICE);
    }

    function test_RevertWhen_SettleNothing() public {
        vm.expectRevert(ICreditSystem.CreditSystemNothingToSettle.selector);
        credits.settle(address(usdc), ids(toolId));
    }

    function test_RevertWhen_SettleEmpty() public {
        vm.expectRevert(ICreditSystem.CreditSystemEmptyBatch.selector);
        credits.settle(address(usdc), new uint256[](0));
    }

    function test_RevertWhen_SettleWrongToken() public {
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemTokenMismatch.selector, toolId, stranger));
        credits.settle(stranger, ids(toolId));
    }

    function test_RevertWhen_SettleUnknownTool() public {
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemTokenMismatch.selector, 77, address(usdc)));
        credits.settle(address(usdc), ids(77));
    }

    /*//////////////////////////////////////////////////////////////
                                  SYNC
    //////////////////////////////////////////////////////////////*/

    function test_RevertWhen_SyncToolCallerNotRegistry() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemNotRegistry.selector, stranger));
        credits.syncTool(toolId, address(usdc), 1);
    }

    function test_RevertWhen_SyncChangesToolToken() public {
        vm.prank(address(registry));
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemTokenMismatch.selector, toolId, stranger));
        credits.syncTool(toolId, stranger, 1);
    }

    function test_WhenPriceChanges_PendingSpendsAreKept() public {
        depositCredits(10_000);
        _spend();
        vm.prank(developer);
        registry.setPrice(toolId, 100);
        (, uint96 price, uint256 calls, uint256 pending) = credits.toolTerms(toolId);
        assertEq(price, 100);
        assertEq(calls, 1);
        assertEq(pending, PRICE);
    }

    /*//////////////////////////////////////////////////////////////
                                 BONUS
    //////////////////////////////////////////////////////////////*/

    function test_FundAndDefundBonusPool() public {
        vm.expectEmit(address(credits));
        emit ICreditSystem.BonusPoolFunded(address(usdc), admin, 10e6);
        vm.prank(admin);
        credits.fundBonusPool(address(usdc), 10e6);
        assertEq(credits.bonusPool(address(usdc)), 10e6);
        address to = makeAddr("to");
        vm.expectEmit(address(credits));
        emit ICreditSystem.BonusPoolDefunded(address(usdc), to, 4e6);
        vm.prank(admin);
        credits.defundBonusPool(address(usdc), 4e6, to);
        assertEq(credits.bonusPool(address(usdc)), 6e6);
        assertEq(usdc.balanceOf(to), 4e6);
    }

    function test_RevertWhen_DefundMoreThanUnallocatedPool() public {
        _fundBonus(10e6, 2000, 0);
        depositCredits(10e6); // 2e6 of the pool is now the user's bonus credits
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemBonusPoolShort.selector, 8e6, 8e6 + 1));
        credits.defundBonusPool(address(usdc), 8e6 + 1, admin);
    }

    function test_RevertWhen_FundBonusPoolCallerNotManager() public {
        bytes32 role = credits.BONUS_MANAGER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        credits.fundBonusPool(address(usdc), 1);
    }

    function test_RevertWhen_FundBonusPoolWhilePaused() public {
        vm.startPrank(admin);
        credits.pause();
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        credits.fundBonusPool(address(usdc), 1);
        vm.stopPrank();
    }

    function test_RevertWhen_FundBonusPoolZero() public {
        vm.prank(admin);
        vm.expectRevert(ICreditSystem.CreditSystemZeroAmount.selector);
        credits.fundBonusPool(address(usdc), 0);
    }

    function test_RevertWhen_DefundToZero() public {
        vm.prank(admin);
        vm.expectRevert(ICreditSystem.CreditSystemZeroAddress.selector);
        credits.defundBonusPool(address(usdc), 1, address(0));
    }

    function test_RevertWhen_DefundUnknownToken() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemBonusPoolShort.selector, 0, 1));
        credits.defundBonusPool(stranger, 1, admin);
    }

    function test_SetBonusPolicy() public {
        vm.expectEmit(address(credits));
        emit ICreditSystem.BonusPolicyUpdated(address(usdc), 500, 1e6);
        vm.prank(admin);
        credits.setBonusPolicy(address(usdc), 500, 1e6);
        (uint16 bps, uint256 minDeposit) = credits.bonusPolicy(address(usdc));
        assertEq(bps, 500);
        assertEq(minDeposit, 1e6);
    }

    function test_RevertWhen_BonusRateTooHigh() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemBonusTooHigh.selector, 5001, 5000));
        credits.setBonusPolicy(address(usdc), 5001, 0);
    }

    function test_RevertWhen_BonusMinimumTooLarge() public {
        uint256 minDeposit = uint256(type(uint128).max) + 1;
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ICreditSystem.CreditSystemAmountTooLarge.selector, minDeposit));
        credits.setBonusPolicy(address(usdc), 100, minDeposit);
    }

    function test_Views_ForUnknownToken() public view {
        assertEq(credits.bonusPool(stranger), 0);
        (uint16 bps, uint256 minDeposit) = credits.bonusPolicy(stranger);
        assertEq(bps, 0);
        assertEq(minDeposit, 0);
        (address token,,,) = credits.toolTerms(999);
        assertEq(token, address(0));
    }

    function test_RevertWhen_PauseCallerNotPauser() public {
        bytes32 role = credits.PAUSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        credits.pause();
    }

    function test_Unpause() public {
        vm.startPrank(admin);
        credits.pause();
        credits.unpause();
        vm.stopPrank();
        depositCredits(1);
    }

    /// @dev payWithCredits writes both packed slots in assembly; the Solidity getters must read back exactly.
    function testFuzz_PackedSlotsRoundTrip(uint128 principal, uint96 price, uint16 bonusBps) public {
        price = uint96(bound(price, 1, type(uint96).max));
        principal = uint128(bound(principal, price, type(uint128).max / 2));
        bonusBps = uint16(bound(bonusBps, 0, 5000));
        vm.prank(developer);
        uint256 bigTool = registry.registerTool("big", address(usdc), price, payout);
        usdc.mint(admin, type(uint128).max / 2);
        vm.startPrank(admin);
        credits.fundBonusPool(address(usdc), type(uint128).max / 2);
        credits.setBonusPolicy(address(usdc), bonusBps, 0);
        vm.stopPrank();
        usdc.mint(user, principal);
        depositCredits(principal);
        (uint256 principalBefore, uint256 bonusBefore) = _credits(user);
        vm.prank(user);
        credits.payWithCredits(bigTool, price);
        uint256 bonusUsed = price * bonusBefore / (principalBefore + bonusBefore);
        uint256 platformShare = uint256(price) * FEE_BPS / 10_000;
        if (bonusUsed > platformShare) bonusUsed = platformShare;
        (uint256 principalAfter, uint256 bonusAfter) = _credits(user);
        assertEq(bonusAfter, bonusBefore - bonusUsed);
        assertEq(principalAfter, principalBefore - (price - bonusUsed));
        (address token, uint96 storedPrice, uint256 calls, uint256 pending) = credits.toolTerms(bigTool);
        assertEq(token, address(usdc));
        assertEq(storedPrice, price);
        assertEq(calls, 1);
        assertEq(pending, price);
    }

    function test_RevertWhen_PendingSpendsOverflow() public {
        depositCredits(10_000);
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
        // Put the tool's pending developer share at the top of its 96-bit field in its ledger (member 7 of the
        // namespace): developer | platform << 96 | calls << 192 | opened << 224.
        bytes32 ledgerSlot = keccak256(
            abi.encode(toolId, uint256(0x6be724ddb9c1211f2b014520d6463d08952f8f8cbfbbefd56d2f5b8edfab3c00) + 7)
        );
        uint256 packed = uint256(vm.load(address(credits), ledgerSlot));
        uint256 developerShare = PRICE - PRICE * FEE_BPS / 10_000;
        assertEq(uint96(packed), developerShare, "slot located");
        // The cap is what one registry record can take: 2^96 - 1 per share.
        uint256 top = uint256(type(uint96).max) - developerShare + 1;
        vm.store(address(credits), ledgerSlot, bytes32((packed >> 96 << 96) | top));
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(
                ICreditSystem.CreditSystemPendingOverflow.selector,
                2,
                uint256(type(uint96).max) + 1 + 2 * (PRICE - developerShare)
            )
        );
        credits.payWithCredits(toolId, PRICE);
    }

    function test_RegistryViewIsWired() public view {
        assertEq(IToolRegistry(credits.registry()).creditSystem(), address(credits));
    }
}
