// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {DeploymentFixture} from "./DeploymentFixture.sol";

/// @notice The tool contracts as script/Deploy.s.sol deploys and wires them: the RevenueSplitter, the ToolRegistry
/// and the CreditSystem, and a funded user with a known key.
abstract contract ToolsFixture is DeploymentFixture {
    uint96 internal constant PRICE = 2500; // 0.0025 USDC per call
    uint16 internal constant FEE_BPS = 2000;

    RevenueSplitter internal splitter;
    ToolRegistry internal registry;
    CreditSystem internal credits;

    address internal treasury = makeAddr("treasury");
    address internal developer = makeAddr("developer");
    address internal payout = makeAddr("payout");
    address internal user;
    uint256 internal userKey;

    function setUp() public virtual {
        (user, userKey) = makeAddrAndKey("user");
        deployStack(treasury, FEE_BPS);
        splitter = RevenueSplitter(deployment.revenueSplitter);
        registry = ToolRegistry(deployment.toolRegistry);
        credits = CreditSystem(deployment.creditSystem);
        fundAndApprove(user, address(registry), address(credits));
    }

    function registerTool(string memory name) internal returns (uint256 toolId) {
        return registerTool(name, PRICE);
    }

    function registerTool(string memory name, uint96 price) internal returns (uint256 toolId) {
        vm.prank(developer);
        toolId = registry.registerTool(name, address(usdc), price, payout);
    }

    function payForTool(uint256 toolId) internal {
        vm.prank(user);
        registry.payForTool(toolId, type(uint256).max);
    }

    function depositCredits(uint256 amount) internal {
        vm.prank(user);
        credits.deposit(address(usdc), amount);
    }

    /// @dev Funds the bonus pool with `pool` new tokens and grants `bonusBps` on every deposit.
    function fundBonus(uint256 pool, uint16 bonusBps) internal {
        usdc.mint(admin, pool);
        vm.startPrank(admin);
        usdc.approve(address(credits), pool);
        credits.fundBonusPool(address(usdc), pool);
        credits.setBonusPolicy(address(usdc), bonusBps, 0);
        vm.stopPrank();
    }

    function setPlatformFee(uint16 feeBps) internal {
        vm.prank(admin);
        registry.setPlatformFee(feeBps);
    }

    /// @dev The user spends credits on `toolId` (listed at `price`) until they no longer cover a call or `maxCalls`
    /// were made; returns the calls made.
    function spendCredits(uint256 toolId, uint256 price, uint256 maxCalls) internal returns (uint256 calls) {
        for (; calls < maxCalls; ++calls) {
            vm.prank(user);
            try credits.payWithCredits(toolId, price) {}
            catch {
                break;
            }
        }
    }

    function ids(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }

    function ids(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
    }
}
