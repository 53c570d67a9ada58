// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "../../contracts/interfaces/IToolRegistry.sol";
import {ExactTransfers} from "../../contracts/libraries/ExactTransfers.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

contract ToolRegistryTest is ToolsFixture {
    function _unauthorized(address account, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, account, role);
    }

    /*//////////////////////////////////////////////////////////////
                               INITIALIZE
    //////////////////////////////////////////////////////////////*/

    function test_Initialize() public view {
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin));
        assertTrue(registry.hasRole(registry.PAUSER_ROLE(), admin));
        assertTrue(registry.hasRole(registry.FEE_MANAGER_ROLE(), admin));
        assertTrue(registry.hasRole(registry.UPGRADER_ROLE(), admin));
        assertFalse(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), address(script)), "deployer renounced");
        assertEq(registry.platformFeeBps(), FEE_BPS);
        assertEq(registry.splitter(), address(splitter));
        assertEq(registry.creditSystem(), address(credits));
        assertTrue(registry.isTokenAllowed(address(usdc)));
        assertFalse(registry.paused());
        assertEq(registry.toolCount(), 0);
    }

    function test_RevertWhen_InitializedTwice() public {
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        registry.initialize(stranger, stranger, 0, new address[](0));
    }

    function test_RevertWhen_ImplementationInitialized() public {
        ToolRegistry implementation = ToolRegistry(deployment.toolRegistryImplementation);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        implementation.initialize(stranger, stranger, 0, new address[](0));
    }

    function test_RevertWhen_InitializeWithZeroSplitter() public {
        address implementation = address(new ToolRegistry());
        vm.expectRevert(IToolRegistry.ToolRegistryZeroAddress.selector);
        new ERC1967Proxy(
            implementation, abi.encodeCall(ToolRegistry.initialize, (admin, address(0), 0, new address[](0)))
        );
    }

    function test_RevertWhen_InitializeWithFeeTooHigh() public {
        address implementation = address(new ToolRegistry());
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryFeeTooHigh.selector, 3001, 3000));
        new ERC1967Proxy(
            implementation, abi.encodeCall(ToolRegistry.initialize, (admin, stranger, 3001, new address[](0)))
        );
    }

    /*//////////////////////////////////////////////////////////////
                               REGISTER
    //////////////////////////////////////////////////////////////*/

    function test_RegisterTool() public {
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolRegistered(1, developer, "weather", address(usdc), PRICE, payout);
        uint256 toolId = registerTool("weather");
        assertEq(toolId, 1);
        assertEq(registry.toolCount(), 1);
        assertEq(registry.toolIdOf("weather"), 1);
        assertEq(registry.developerOf(1), developer);
        IToolRegistry.Tool memory tool = registry.getTool(1);
        assertEq(tool.name, "weather");
        assertEq(tool.developer, developer);
        assertEq(tool.token, address(usdc));
        assertEq(tool.payout, payout);
        assertEq(tool.price, PRICE);
        assertTrue(tool.active);
        // The CreditSystem got the terms in the same transaction.
        (address token, uint96 price,,) = credits.toolTerms(1);
        assertEq(token, address(usdc));
        assertEq(price, PRICE);
    }

    function test_RegisterTool_IdsAreSequential() public {
        assertEq(registerTool("a"), 1);
        assertEq(registerTool("b"), 2);
        assertEq(registerTool("c-2"), 3);
    }

    function test_RevertWhen_NameTakenByAnotherDeveloper() public {
        registerTool("weather");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNameTaken.selector, "weather", developer));
        registry.registerTool("weather", address(usdc), PRICE, stranger);
    }

    function test_RevertWhen_NameTakenBySameDeveloper() public {
        registerTool("weather");
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNameTaken.selector, "weather", developer));
        registry.registerTool("weather", address(usdc), PRICE, payout);
    }

    function test_RevertWhen_NameInvalid() public {
        string[9] memory names =
            ["", "Weather", "weather tool", "-weather", "weather-", "wea_ther", "wetter\xc3\xa4", "a.b", "A"];
        for (uint256 i; i < names.length; ++i) {
            vm.prank(developer);
            vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryInvalidName.selector, names[i]));
            registry.registerTool(names[i], address(usdc), PRICE, payout);
        }
    }

    function test_RegisterTool_NameLengthBounds() public {
        bytes memory longest = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            longest[i] = "a";
        }
        registerTool(string(longest));
        bytes memory tooLong = abi.encodePacked(longest, "a");
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryInvalidName.selector, string(tooLong)));
        registry.registerTool(string(tooLong), address(usdc), PRICE, payout);
    }

    function test_RevertWhen_RegisterWithTokenNotAllowed() public {
        address other = address(new TestStablecoin("X", "X", "1", address(this)));
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryTokenNotAllowed.selector, other));
        registry.registerTool("weather", other, PRICE, payout);
    }

    function test_RevertWhen_RegisterWithZeroPrice() public {
        vm.prank(developer);
        vm.expectRevert(IToolRegistry.ToolRegistryZeroPrice.selector);
        registry.registerTool("weather", address(usdc), 0, payout);
    }

    function test_RevertWhen_RegisterWithZeroPayout() public {
        vm.prank(developer);
        vm.expectRevert(IToolRegistry.ToolRegistryZeroAddress.selector);
        registry.registerTool("weather", address(usdc), PRICE, address(0));
    }

    function test_RevertWhen_RegisterWhilePaused() public {
        vm.prank(admin);
        registry.pause();
        vm.prank(developer);
        vm.expectRevert(IToolRegistry.ToolRegistryEnforcedPause.selector);
        registry.registerTool("weather", address(usdc), PRICE, payout);
    }

    /*//////////////////////////////////////////////////////////////
                                UPDATE
    //////////////////////////////////////////////////////////////*/

    function test_SetPrice() public {
        uint256 toolId = registerTool("weather");
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolPriceUpdated(toolId, PRICE, 7000);
        vm.prank(developer);
        registry.setPrice(toolId, 7000);
        assertEq(registry.getTool(toolId).price, 7000);
        (, uint96 mirrored,,) = credits.toolTerms(toolId);
        assertEq(mirrored, 7000);
    }

    function test_RevertWhen_SetPriceCallerNotDeveloper() public {
        uint256 toolId = registerTool("weather");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNotToolDeveloper.selector, toolId, stranger));
        registry.setPrice(toolId, 1);
    }

    function test_RevertWhen_SetPriceZero() public {
        uint256 toolId = registerTool("weather");
        vm.prank(developer);
        vm.expectRevert(IToolRegistry.ToolRegistryZeroPrice.selector);
        registry.setPrice(toolId, 0);
    }

    function test_RevertWhen_SetPriceUnknownTool() public {
        vm.prank(developer);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 9));
        registry.setPrice(9, 1);
    }

    function test_SetPayout() public {
        uint256 toolId = registerTool("weather");
        address newPayout = makeAddr("newPayout");
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolPayoutUpdated(toolId, payout, newPayout);
        vm.prank(developer);
        registry.setPayout(toolId, newPayout);
        assertEq(registry.getTool(toolId).payout, newPayout);
    }

    function test_RevertWhen_SetPayoutZero() public {
        uint256 toolId = registerTool("weather");
        vm.prank(developer);
        vm.expectRevert(IToolRegistry.ToolRegistryZeroAddress.selector);
        registry.setPayout(toolId, address(0));
    }

    function test_RevertWhen_SetPayoutCallerNotDeveloper() public {
        uint256 toolId = registerTool("weather");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNotToolDeveloper.selector, toolId, stranger));
        registry.setPayout(toolId, stranger);
    }

    function test_SetActive() public {
        uint256 toolId = registerTool("weather");
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolActiveUpdated(toolId, false);
        vm.prank(developer);
        registry.setActive(toolId, false);
        assertFalse(registry.getTool(toolId).active);
        (, uint96 mirrored,,) = credits.toolTerms(toolId);
        assertEq(mirrored, 0, "inactive tools are not payable with credits");
        vm.prank(developer);
        registry.setActive(toolId, true);
        (, mirrored,,) = credits.toolTerms(toolId);
        assertEq(mirrored, PRICE);
    }

    function test_RevertWhen_SetActiveCallerNotDeveloper() public {
        uint256 toolId = registerTool("weather");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNotToolDeveloper.selector, toolId, stranger));
        registry.setActive(toolId, false);
    }

    /*//////////////////////////////////////////////////////////////
                              PAY FOR TOOL
    //////////////////////////////////////////////////////////////*/

    function test_PayForTool() public {
        uint256 toolId = registerTool("weather");
        uint256 fee = uint256(PRICE) * FEE_BPS / 10_000;
        uint256 before = usdc.balanceOf(user);
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolPaid(toolId, user, PRICE, PRICE - fee, fee);
        vm.prank(user);
        registry.payForTool(toolId, PRICE);
        assertEq(usdc.balanceOf(user), before - PRICE, "charged exactly the price");
        assertEq(usdc.balanceOf(address(registry)), PRICE);
        IToolRegistry.ToolStats memory stats = registry.getToolStats(toolId);
        assertEq(stats.calls, 1);
        assertEq(stats.revenue, PRICE);
        assertEq(stats.pendingDeveloper, PRICE - fee);
        assertEq(stats.pendingPlatform, fee);
    }

    function test_WhenFeeDoesNotDivideEvenly_DeveloperGetsTheDust() public {
        uint256 toolId = registerTool("odd", 999);
        payForTool(toolId);
        IToolRegistry.ToolStats memory stats = registry.getToolStats(toolId);
        assertEq(stats.pendingPlatform, 199); // floor(999 * 0.2)
        assertEq(stats.pendingDeveloper, 800);
    }

    function test_RevertWhen_PriceAboveMax() public {
        uint256 toolId = registerTool("weather");
        vm.prank(user);
        vm.expectRevert(
            abi.encodeWithSelector(IToolRegistry.ToolRegistryPriceAboveMax.selector, toolId, PRICE, PRICE - 1)
        );
        registry.payForTool(toolId, PRICE - 1);
    }

    function test_RevertWhen_PayInactiveTool() public {
        uint256 toolId = registerTool("weather");
        vm.prank(developer);
        registry.setActive(toolId, false);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolInactive.selector, toolId));
        registry.payForTool(toolId, PRICE);
    }

    function test_RevertWhen_PayUnknownTool() public {
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 1));
        registry.payForTool(1, PRICE);
    }

    function test_RevertWhen_PayWhilePaused() public {
        uint256 toolId = registerTool("weather");
        vm.prank(admin);
        registry.pause();
        vm.prank(user);
        vm.expectRevert(IToolRegistry.ToolRegistryEnforcedPause.selector);
        registry.payForTool(toolId, PRICE);
    }

    function test_RevertWhen_PayWithoutAllowance() public {
        uint256 toolId = registerTool("weather");
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(registry), 0, PRICE)
        );
        registry.payForTool(toolId, PRICE);
    }

    function test_RevertWhen_TokenChargesTransferFee() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        vm.prank(admin);
        registry.setTokenAllowed(address(fee), true);
        vm.prank(developer);
        uint256 toolId = registry.registerTool("fee", address(fee), 1000, payout);
        fee.mint(user, 1000);
        vm.startPrank(user);
        fee.approve(address(registry), 1000);
        vm.expectRevert(abi.encodeWithSelector(ExactTransfers.ExactTransferMismatch.selector, address(fee), 1000, 990));
        registry.payForTool(toolId, 1000);
        vm.stopPrank();
    }

    function test_WhenTokenDisallowedLater_ExistingToolStillPayable() public {
        uint256 toolId = registerTool("weather");
        vm.prank(admin);
        registry.setTokenAllowed(address(usdc), false);
        payForTool(toolId);
        assertEq(registry.getToolStats(toolId).calls, 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 SETTLE
    //////////////////////////////////////////////////////////////*/

    function test_Settle() public {
        uint256 a = registerTool("a");
        uint256 b = registerTool("b", 10_000);
        payForTool(a);
        payForTool(b);
        payForTool(b);
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolSettled(a, payout, 2000, 500);
        vm.expectEmit(address(registry));
        emit IToolRegistry.ToolSettled(b, payout, 16_000, 4000);
        vm.prank(stranger); // anyone
        registry.settle(address(usdc), ids(a, b));
        assertEq(usdc.balanceOf(address(registry)), 0);
        assertEq(splitter.balanceOf(payout, address(usdc)), 18_000);
        assertEq(splitter.balanceOf(treasury, address(usdc)), 4500);
        IToolRegistry.ToolStats memory stats = registry.getToolStats(b);
        assertEq(stats.pendingDeveloper, 0);
        assertEq(stats.pendingPlatform, 0);
        assertEq(stats.revenue, 20_000, "revenue survives settlement");
        assertEq(stats.calls, 2);
    }

    function test_WhenSomeToolsHaveNothingPending_SettleSkipsThem() public {
        uint256 a = registerTool("a");
        uint256 b = registerTool("b");
        payForTool(b);
        registry.settle(address(usdc), ids(a, b));
        assertEq(splitter.balanceOf(payout, address(usdc)), 2000);
    }

    function test_WhenPaused_SettleSucceeds() public {
        uint256 a = registerTool("a");
        payForTool(a);
        vm.prank(admin);
        registry.pause();
        registry.settle(address(usdc), ids(a));
        assertEq(splitter.balanceOf(payout, address(usdc)), 2000);
    }

    function test_WhenPayoutChanges_SettleUsesNewPayout() public {
        uint256 a = registerTool("a");
        payForTool(a);
        address newPayout = makeAddr("newPayout");
        vm.prank(developer);
        registry.setPayout(a, newPayout);
        registry.settle(address(usdc), ids(a));
        assertEq(splitter.balanceOf(newPayout, address(usdc)), 2000);
    }

    function test_RevertWhen_SettleNothingPending() public {
        uint256 a = registerTool("a");
        vm.expectRevert(IToolRegistry.ToolRegistryNothingToSettle.selector);
        registry.settle(address(usdc), ids(a));
    }

    function test_RevertWhen_SettleWithWrongToken() public {
        uint256 a = registerTool("a");
        payForTool(a);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryTokenMismatch.selector, a, stranger));
        registry.settle(stranger, ids(a));
    }

    function test_RevertWhen_SettleEmpty() public {
        vm.expectRevert(IToolRegistry.ToolRegistryEmptyBatch.selector);
        registry.settle(address(usdc), new uint256[](0));
    }

    function test_RevertWhen_SettleUnknownTool() public {
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 5));
        registry.settle(address(usdc), ids(5));
    }

    function test_WhenSplitterPaused_SettleSucceeds() public {
        uint256 a = registerTool("a");
        payForTool(a);
        vm.prank(admin);
        splitter.pause();
        // Settling hands over revenue already owed to developers, which a pause never blocks.
        registry.settle(address(usdc), ids(a));
        assertEq(splitter.balanceOf(payout, address(usdc)), 2000);
    }

    /*//////////////////////////////////////////////////////////////
                          CREDIT PAYMENTS
    //////////////////////////////////////////////////////////////*/

    function _creditPayment(uint256 toolId) internal pure returns (IToolRegistry.CreditPayment[] memory list) {
        list = new IToolRegistry.CreditPayment[](1);
        list[0] = IToolRegistry.CreditPayment({toolId: toolId, calls: 1, developerAmount: 1, platformAmount: 0});
    }

    function test_RevertWhen_RecordCreditPaymentsCallerNotCreditSystem() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryNotCreditSystem.selector, stranger));
        registry.recordCreditPayments(address(usdc), _creditPayment(1));
    }

    function test_RevertWhen_RecordCreditPaymentsEmpty() public {
        vm.prank(address(credits));
        vm.expectRevert(IToolRegistry.ToolRegistryEmptyBatch.selector);
        registry.recordCreditPayments(address(usdc), new IToolRegistry.CreditPayment[](0));
    }

    function test_RevertWhen_RecordCreditPaymentsTokenMismatch() public {
        uint256 a = registerTool("a");
        vm.prank(address(credits));
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryTokenMismatch.selector, a, stranger));
        registry.recordCreditPayments(stranger, _creditPayment(a));
    }

    function test_RecordCreditPayments_ThroughCreditSystemSettle() public {
        uint256 a = registerTool("a");
        depositCredits(10_000);
        vm.startPrank(user);
        credits.payWithCredits(a, PRICE);
        credits.payWithCredits(a, PRICE);
        vm.stopPrank();
        vm.expectEmit(address(registry));
        emit IToolRegistry.CreditPaymentsRecorded(address(usdc), 1, 2, 5000);
        credits.settle(address(usdc), ids(a));
        IToolRegistry.ToolStats memory stats = registry.getToolStats(a);
        assertEq(stats.calls, 2);
        assertEq(stats.revenue, 5000);
        assertEq(stats.pendingDeveloper, 4000);
        assertEq(stats.pendingPlatform, 1000);
        assertEq(usdc.balanceOf(address(registry)), 5000);
    }

    function test_SyncCreditTerms() public {
        uint256 a = registerTool("a");
        registry.syncCreditTerms(ids(a));
        (address token, uint96 price,,) = credits.toolTerms(a);
        assertEq(token, address(usdc));
        assertEq(price, PRICE);
    }

    function test_RevertWhen_SyncCreditTermsEmpty() public {
        vm.expectRevert(IToolRegistry.ToolRegistryEmptyBatch.selector);
        registry.syncCreditTerms(new uint256[](0));
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    function test_SetPlatformFee() public {
        vm.expectEmit(address(registry));
        emit IToolRegistry.PlatformFeeUpdated(FEE_BPS, 3000);
        vm.prank(admin);
        registry.setPlatformFee(3000);
        assertEq(registry.platformFeeBps(), 3000);
        uint256 a = registerTool("a", 10_000);
        payForTool(a);
        assertEq(registry.getToolStats(a).pendingPlatform, 3000);
    }

    function test_SetPlatformFee_Zero() public {
        vm.prank(admin);
        registry.setPlatformFee(0);
        uint256 a = registerTool("a");
        payForTool(a);
        assertEq(registry.getToolStats(a).pendingDeveloper, PRICE);
    }

    function test_RevertWhen_PlatformFeeAboveMax() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryFeeTooHigh.selector, 3001, 3000));
        registry.setPlatformFee(3001);
    }

    function test_RevertWhen_SetPlatformFeeCallerNotFeeManager() public {
        bytes32 role = registry.FEE_MANAGER_ROLE();
        vm.prank(developer);
        vm.expectRevert(_unauthorized(developer, role));
        registry.setPlatformFee(0);
    }

    function test_SetTokenAllowed() public {
        address other = address(new TestStablecoin("X", "X", "1", address(this)));
        vm.expectEmit(address(registry));
        emit IToolRegistry.TokenAllowanceUpdated(other, true);
        vm.prank(admin);
        registry.setTokenAllowed(other, true);
        assertTrue(registry.isTokenAllowed(other));
    }

    function test_RevertWhen_AllowedTokenHasNoCode() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryTokenHasNoCode.selector, stranger));
        registry.setTokenAllowed(stranger, true);
    }

    function test_RevertWhen_AllowedTokenIsZero() public {
        vm.prank(admin);
        vm.expectRevert(IToolRegistry.ToolRegistryZeroAddress.selector);
        registry.setTokenAllowed(address(0), true);
    }

    function test_RevertWhen_SetTokenAllowedCallerNotAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, bytes32(0)));
        registry.setTokenAllowed(address(usdc), false);
    }

    function test_RevertWhen_CreditSystemSetTwice() public {
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IToolRegistry.ToolRegistryCreditSystemAlreadySet.selector, address(credits))
        );
        registry.setCreditSystem(stranger);
    }

    function test_RevertWhen_SetCreditSystemCallerNotAdmin() public {
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, bytes32(0)));
        registry.setCreditSystem(stranger);
    }

    function test_PauseAndUnpause() public {
        vm.expectEmit(address(registry));
        emit IToolRegistry.Paused(admin);
        vm.prank(admin);
        registry.pause();
        assertTrue(registry.paused());
        vm.expectEmit(address(registry));
        emit IToolRegistry.Unpaused(admin);
        vm.prank(admin);
        registry.unpause();
        assertFalse(registry.paused());
    }

    function test_RevertWhen_PauseTwice() public {
        vm.startPrank(admin);
        registry.pause();
        vm.expectRevert(IToolRegistry.ToolRegistryEnforcedPause.selector);
        registry.pause();
        vm.stopPrank();
    }

    function test_RevertWhen_UnpauseWhileNotPaused() public {
        vm.prank(admin);
        vm.expectRevert(IToolRegistry.ToolRegistryExpectedPause.selector);
        registry.unpause();
    }

    function test_RevertWhen_PauseCallerNotPauser() public {
        bytes32 role = registry.PAUSER_ROLE();
        vm.prank(stranger);
        vm.expectRevert(_unauthorized(stranger, role));
        registry.pause();
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function test_GetTools_Pages() public {
        for (uint256 i; i < 5; ++i) {
            registerTool(string.concat("tool-", vm.toString(i)));
        }
        (uint256[] memory page, IToolRegistry.Tool[] memory tools) = registry.getTools(1, 2);
        assertEq(page.length, 2);
        assertEq(page[0], 2);
        assertEq(page[1], 3);
        assertEq(tools[1].name, "tool-2");
        (page,) = registry.getTools(4, 10);
        assertEq(page.length, 1);
        assertEq(page[0], 5);
        (page,) = registry.getTools(5, 10);
        assertEq(page.length, 0);
        (page,) = registry.getTools(0, 0);
        assertEq(page.length, 0);
    }

    function test_GetToolsByDeveloper_Pages() public {
        registerTool("mine-1");
        vm.prank(stranger);
        registry.registerTool("theirs", address(usdc), PRICE, stranger);
        registerTool("mine-2");
        (uint256[] memory page, IToolRegistry.Tool[] memory tools) = registry.getToolsByDeveloper(developer, 0, 10);
        assertEq(page.length, 2);
        assertEq(page[0], 1);
        assertEq(page[1], 3);
        assertEq(tools[1].name, "mine-2");
        (page,) = registry.getToolsByDeveloper(developer, 1, 1);
        assertEq(page.length, 1);
        assertEq(page[0], 3);
        (page,) = registry.getToolsByDeveloper(developer, 2, 1);
        assertEq(page.length, 0);
    }

    function test_RevertWhen_GetUnknownTool() public {
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 1));
        registry.getTool(1);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 0));
        registry.getToolStats(0);
        vm.expectRevert(abi.encodeWithSelector(IToolRegistry.ToolRegistryToolNotFound.selector, 2));
        registry.developerOf(2);
    }

    function test_ToolIdOfUnknownNameIsZero() public view {
        assertEq(registry.toolIdOf("nope"), 0);
    }

    function test_SettlementReachesTheSplitterAsOneBatch() public {
        uint256 a = registerTool("a");
        payForTool(a);
        vm.expectEmit(address(splitter));
        emit IRevenueSplitter.BatchProcessed(address(usdc), address(registry), 1, PRICE);
        registry.settle(address(usdc), ids(a));
    }
}
