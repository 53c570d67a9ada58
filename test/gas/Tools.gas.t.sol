// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRevenueSplitter} from "../../contracts/interfaces/IRevenueSplitter.sol";
import {ToolsFixture} from "../utils/ToolsFixture.sol";

/// @notice Transaction-level gas (tests run isolated) of the tool payment paths next to a plain ERC-20
/// transferFrom measured the same way, written to snapshots/Tools.json and compared in CI.
contract ToolsGasTest is ToolsFixture {
    string internal constant GROUP = "Tools";
    uint256 internal toolId;
    address internal spender = makeAddr("spender");
    address internal recipient = makeAddr("recipient");

    function setUp() public override {
        super.setUp();
        toolId = registerTool("weather");
        // Steady state: the payout, treasury, registry and recipient already hold balances, the user has credits.
        payForTool(toolId);
        depositCredits(1000e6);
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
        usdc.mint(recipient, 1);
        vm.prank(user);
        usdc.approve(spender, 1000e6);
    }

    function test_Gas_PlainTransferFrom() public {
        vm.prank(spender);
        assertTrue(usdc.transferFrom(user, recipient, PRICE));
        vm.snapshotGasLastCall(GROUP, "erc20_transferFrom");
    }

    function test_Gas_PayForTool() public {
        vm.prank(user);
        registry.payForTool(toolId, PRICE);
        vm.snapshotGasLastCall(GROUP, "payForTool");
    }

    function test_Gas_PayWithCredits() public {
        vm.prank(user);
        credits.payWithCredits(toolId, PRICE);
        vm.snapshotGasLastCall(GROUP, "payWithCredits");
    }

    function test_Gas_RegisterTool() public {
        vm.prank(developer);
        registry.registerTool("search-engine", address(usdc), PRICE, payout);
        vm.snapshotGasLastCall(GROUP, "registerTool");
    }

    function test_Gas_Deposit() public {
        vm.prank(user);
        credits.deposit(address(usdc), 10e6);
        vm.snapshotGasLastCall(GROUP, "deposit");
    }

    function test_Gas_Withdraw() public {
        vm.prank(user);
        credits.withdraw(address(usdc), 10e6, user);
        vm.snapshotGasLastCall(GROUP, "withdrawCredits");
    }

    function test_Gas_SettleAndWithdraw() public {
        credits.settle(address(usdc), ids(toolId));
        vm.snapshotGasLastCall(GROUP, "creditSystem_settle_1");
        registry.settle(address(usdc), ids(toolId));
        vm.snapshotGasLastCall(GROUP, "registry_settle_1");
        vm.prank(payout);
        splitter.withdraw(address(usdc), payout);
        vm.snapshotGasLastCall(GROUP, "splitter_withdraw");
    }

    /// @dev 100 payments to 100 developers with no prior balance in one batch.
    function test_Gas_ProcessBatchPayments_100() public {
        address distributor = makeAddr("distributor");
        bytes32 role = splitter.DISTRIBUTOR_ROLE();
        vm.prank(admin);
        splitter.grantRole(role, distributor);
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](100);
        for (uint256 i; i < 100; ++i) {
            payments[i] = IRevenueSplitter.Payment({
                toolId: 1000 + i,
                payee: address(uint160(uint256(keccak256(abi.encode("payee", i))))),
                developerAmount: 8000,
                platformAmount: 2000
            });
        }
        usdc.mint(distributor, 1_000_000);
        vm.prank(distributor);
        usdc.approve(address(splitter), 1_000_000);
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), payments);
        vm.snapshotGasLastCall(GROUP, "processBatchPayments_100");
    }
}
