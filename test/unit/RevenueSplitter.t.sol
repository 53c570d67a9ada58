// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {BlacklistableStablecoin} from "../mocks/BlacklistableStablecoin.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

contract RevenueSplitterTest is ToolsFixture {
    address internal distributor = makeAddr("distributor");
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");
    address internal carol = makeAddr("carol");
    uint256 internal toolId;

    function setUp() public override {
        super.setUp();
        toolId = registerTool("weather");
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(admin);
        splitter.grantRole(role, distributor);
        usdc.mint(distributor, 1_000_000e6);
        vm.prank(distributor);
        usdc.approve(address(splitter), type(uint256).max);
    }

    function _payment(uint256 id, address payee, uint256 developerAmount, uint256 platformAmount)
        internal
        pure
        returns (IRevenueSplitter.Payment memory)
    {
        return IRevenueSplitter.Payment(id, payee, developerAmount, platformAmount);
    }

    function _one(IRevenueSplitter.Payment memory payment)
        internal
        pure
        returns (IRevenueSplitter.Payment[] memory payments)
    {
        payments = new IRevenueSplitter.Payment[](1);
        payments[0] = payment;
    }

    function _setSplit(address[] memory recipients, uint16[] memory shares) internal {
        vm.prank(developer);
        splitter.setSplit(toolId, recipients, shares);
    }

    function _threeWay() internal view returns (address[] memory recipients, uint16[] memory shares) {
        recipients = new address[](3);
        recipients[0] = alice;
        recipients[1] = bob;
        recipients[2] = carol;
        shares = new uint16[](3);
        shares[0] = 5000;
        shares[1] = 3000;
        shares[2] = 2000;
    }

    /*//////////////////////////////////////////////////////////////
                               INITIALIZE
    //////////////////////////////////////////////////////////////*/

    function test_Initialize() public view {
        assertEq(splitter.platformTreasury(), treasury);
        assertEq(splitter.registry(), address(registry));
        assertTrue(splitter.hasRole(splitter.DISTRIBUTOR_ROLE(), address(registry)));
        assertTrue(splitter.hasRole(splitter.DEFAULT_ADMIN_ROLE(), admin));
        assertFalse(splitter.hasRole(splitter.DEFAULT_ADMIN_ROLE(), address(script)), "deployer renounced");
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        splitter.initialize(stranger, stranger);
    }

    function test_RevertWhen_ImplementationInitialized() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        RevenueSplitter(deployment.revenueSplitterImplementation).initialize(stranger, stranger);
    }

    function test_RevertWhen_InitializeWithZeroTreasury() public {
        address implementation = address(new RevenueSplitter());
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        new ERC1967Proxy(implementation, abi.encodeCall(RevenueSplitter.initialize, (admin, address(0))));
    }

    /*//////////////////////////////////////////////////////////////
                            BATCH PAYMENTS
    //////////////////////////////////////////////////////////////*/

    function test_ProcessBatchPayments() public {
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](3);
        payments[0] = _payment(7, alice, 800, 200);
        payments[1] = _payment(8, bob, 1600, 400);
        payments[2] = _payment(7, alice, 800, 200);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.PaymentProcessed(address(usdc), 7, alice, 800, 200, false);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.PaymentProcessed(address(usdc), 8, bob, 1600, 400, false);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.PaymentProcessed(address(usdc), 7, alice, 800, 200, false);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.BatchProcessed(address(usdc), distributor, 3, 4000);
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), payments);
        assertEq(splitter.balanceOf(alice, address(usdc)), 1600);
        assertEq(splitter.balanceOf(bob, address(usdc)), 1600);
        assertEq(splitter.balanceOf(treasury, address(usdc)), 800);
        assertEq(usdc.balanceOf(address(splitter)), 4000);
    }

    function test_WhenToolHasSplit_DeveloperShareIsDividedWithDustToFirstRecipient() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        _setSplit(recipients, shares);
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(toolId, payout, 1001, 250)));
        // floor(1001 * .5) = 500, floor(1001 * .3) = 300, floor(1001 * .2) = 200; 1 unit of dust to alice
        assertEq(splitter.balanceOf(alice, address(usdc)), 501);
        assertEq(splitter.balanceOf(bob, address(usdc)), 300);
        assertEq(splitter.balanceOf(carol, address(usdc)), 200);
        assertEq(splitter.balanceOf(payout, address(usdc)), 0, "the payee gets nothing when a split is set");
        assertEq(splitter.balanceOf(treasury, address(usdc)), 250);
    }

    function test_RevertWhen_BatchCallerNotDistributor() public {
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 1, 0)));
    }

    function test_RevertWhen_BatchEmpty() public {
        vm.prank(distributor);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterEmptyBatch.selector);
        splitter.processBatchPayments(address(usdc), new IRevenueSplitter.Payment[](0));
    }

    function test_RevertWhen_BatchPayeeZeroWithoutSplit() public {
        vm.prank(distributor);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        splitter.processBatchPayments(address(usdc), _one(_payment(99, address(0), 1, 0)));
    }

    function test_RevertWhen_BatchWhilePaused() public {
        vm.prank(admin);
        splitter.pause();
        vm.prank(distributor);
        vm.expectRevert(PausableUpgradeable.EnforcedPause.selector);
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 1, 0)));
    }

    function test_RevertWhen_DistributorDidNotFundTheBatch() public {
        address broke = makeAddr("broke");
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(admin);
        splitter.grantRole(role, broke);
        vm.prank(broke);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(splitter), 0, 10)
        );
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 8, 2)));
    }

    function test_RevertWhen_BatchTokenChargesTransferFee() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        fee.mint(distributor, 1000);
        vm.startPrank(distributor);
        fee.approve(address(splitter), 1000);
        vm.expectRevert(abi.encodeWithSelector(ExactTransfers.ExactTransferMismatch.selector, address(fee), 1000, 990));
        splitter.processBatchPayments(address(fee), _one(_payment(1, alice, 800, 200)));
        vm.stopPrank();
    }

    /*//////////////////////////////////////////////////////////////
                                 SPLITS
    //////////////////////////////////////////////////////////////*/

    function test_SetSplit() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.SplitSet(toolId, recipients, shares);
        _setSplit(recipients, shares);
        (address[] memory storedRecipients, uint16[] memory storedShares) = splitter.getSplit(toolId);
        assertEq(storedRecipients, recipients);
        assertEq(storedShares.length, 3);
        assertEq(storedShares[2], 2000);
    }

    function test_SetSplit_ReplacesPrevious() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        _setSplit(recipients, shares);
        address[] memory two = new address[](2);
        two[0] = carol;
        two[1] = alice;
        uint16[] memory halves = new uint16[](2);
        halves[0] = 5000;
        halves[1] = 5000;
        _setSplit(two, halves);
        (address[] memory storedRecipients,) = splitter.getSplit(toolId);
        assertEq(storedRecipients.length, 2);
        assertEq(storedRecipients[0], carol);
    }

    function test_RevertWhen_SetSplitCallerNotDeveloper() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterNotToolDeveloper.selector, toolId, stranger)
        );
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SetSplitUnknownTool() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 42));
        splitter.setSplit(42, recipients, shares);
    }

    function test_RevertWhen_SplitLengthsDiffer() public {
        (address[] memory recipients,) = _threeWay();
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterLengthMismatch.selector, 3, 2));
        splitter.setSplit(toolId, recipients, new uint16[](2));
    }

    function test_RevertWhen_SplitHasNoRecipients() public {
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterInvalidRecipientCount.selector, 0, 20));
        splitter.setSplit(toolId, new address[](0), new uint16[](0));
    }

    function test_RevertWhen_SplitHasTooManyRecipients() public {
        address[] memory recipients = new address[](21);
        uint16[] memory shares = new uint16[](21);
        for (uint256 i; i < 21; ++i) {
            recipients[i] = address(uint160(i + 1));
            shares[i] = 1;
        }
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterInvalidRecipientCount.selector, 21, 20));
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SplitSharesDoNotSumToWhole() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        shares[2] = 1999;
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterInvalidShares.selector, 9999));
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SplitShareIsZero() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        shares[0] = 7000;
        shares[2] = 0;
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterInvalidShares.selector, 0));
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SplitRecipientDuplicated() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        recipients[2] = alice;
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterDuplicateRecipient.selector, alice));
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SplitRecipientZero() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        recipients[1] = address(0);
        vm.prank(developer);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        splitter.setSplit(toolId, recipients, shares);
    }

    function test_RevertWhen_SplitSetBeforeRegistryWired() public {
        RevenueSplitter fresh = RevenueSplitter(
            address(
                new ERC1967Proxy(
                    address(new RevenueSplitter()), abi.encodeCall(RevenueSplitter.initialize, (admin, treasury))
                )
            )
        );
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        vm.prank(developer);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterRegistryNotSet.selector);
        fresh.setSplit(toolId, recipients, shares);
    }

    function test_ClearSplit() public {
        (address[] memory recipients, uint16[] memory shares) = _threeWay();
        _setSplit(recipients, shares);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.SplitCleared(toolId);
        vm.prank(developer);
        splitter.clearSplit(toolId);
        (address[] memory stored,) = splitter.getSplit(toolId);
        assertEq(stored.length, 0);
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(toolId, payout, 100, 0)));
        assertEq(splitter.balanceOf(payout, address(usdc)), 100);
    }

    function test_RevertWhen_ClearMissingSplit() public {
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterNoSplit.selector, toolId));
        splitter.clearSplit(toolId);
    }

    function test_RevertWhen_ClearSplitCallerNotDeveloper() public {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterNotToolDeveloper.selector, toolId, stranger)
        );
        splitter.clearSplit(toolId);
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_Withdraw() public {
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 800, 200)));
        address wallet = makeAddr("wallet");
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.Withdrawn(alice, address(usdc), wallet, 800);
        vm.prank(alice);
        assertEq(splitter.withdraw(address(usdc), wallet), 800);
        assertEq(usdc.balanceOf(wallet), 800);
        assertEq(splitter.balanceOf(alice, address(usdc)), 0);
    }

    function test_WhenPaused_WithdrawSucceeds() public {
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 800, 200)));
        vm.prank(admin);
        splitter.pause();
        vm.prank(alice);
        splitter.withdraw(address(usdc), alice);
        assertEq(usdc.balanceOf(alice), 800);
    }

    function test_WhenRecipientBlacklisted_OthersStillWithdraw() public {
        BlacklistableStablecoin token = new BlacklistableStablecoin(address(this));
        token.mint(distributor, 10_000);
        vm.prank(distributor);
        token.approve(address(splitter), type(uint256).max);
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](2);
        payments[0] = _payment(1, alice, 800, 200);
        payments[1] = _payment(2, bob, 800, 200);
        vm.prank(distributor);
        splitter.processBatchPayments(address(token), payments);
        token.setBlacklisted(alice, true);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(BlacklistableStablecoin.Blacklisted.selector, alice));
        splitter.withdraw(address(token), alice);
        vm.prank(bob);
        splitter.withdraw(address(token), bob);
        assertEq(token.balanceOf(bob), 800);
        vm.prank(treasury);
        splitter.withdraw(address(token), treasury);
        // The blacklisted recipient keeps its balance and can withdraw to another address.
        address fresh = makeAddr("fresh");
        vm.prank(alice);
        splitter.withdraw(address(token), fresh);
        assertEq(token.balanceOf(fresh), 800);
    }

    function test_RevertWhen_WithdrawNothing() public {
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterNothingToWithdraw.selector, alice, address(usdc))
        );
        splitter.withdraw(address(usdc), alice);
    }

    function test_RevertWhen_WithdrawToZero() public {
        vm.prank(alice);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        splitter.withdraw(address(usdc), address(0));
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    function test_SetPlatformTreasury_KeepsExistingBalanceWithOldTreasury() public {
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 800, 200)));
        address newTreasury = makeAddr("newTreasury");
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.PlatformTreasuryUpdated(treasury, newTreasury);
        vm.prank(admin);
        splitter.setPlatformTreasury(newTreasury);
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), _one(_payment(1, alice, 800, 200)));
        assertEq(splitter.balanceOf(treasury, address(usdc)), 200);
        assertEq(splitter.balanceOf(newTreasury, address(usdc)), 200);
    }

    function test_RevertWhen_PlatformTreasuryZero() public {
        vm.prank(admin);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        splitter.setPlatformTreasury(address(0));
    }

    function test_RevertWhen_SetPlatformTreasuryCallerNotAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, bytes32(0))
        );
        splitter.setPlatformTreasury(stranger);
    }

    function test_RevertWhen_RegistrySetTwice() public {
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueSplitter.RevenueSplitterRegistryAlreadySet.selector, address(registry))
        );
        splitter.setRegistry(stranger);
    }

    function test_RevertWhen_RegistryZero() public {
        vm.prank(admin);
        vm.expectRevert(IRevenueSplitter.RevenueSplitterZeroAddress.selector);
        splitter.setRegistry(address(0));
    }

    function test_RevertWhen_PauseCallerNotPauser() public {
        bytes32 role = splitter.PAUSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        splitter.pause();
    }

    function test_Unpause() public {
        vm.startPrank(admin);
        splitter.pause();
        splitter.unpause();
        vm.stopPrank();
        assertFalse(splitter.paused());
    }
}
