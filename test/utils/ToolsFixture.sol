// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../contracts/CreditSystem.sol";
import {RevenueSplitter} from "../../contracts/RevenueSplitter.sol";
import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../contracts/ToolRegistry.sol";
import {Deploy} from "../../script/Deploy.s.sol";
import {Test} from "forge-std/Test.sol";

/// @notice The tool contracts deployed and wired by script/Deploy.s.sol itself, so tests exercise the production
/// wiring: a TestStablecoin, the RevenueSplitter, the ToolRegistry and the CreditSystem.
abstract contract ToolsFixture is Test {
    uint256 internal constant START = 1_700_000_000;
    uint96 internal constant PRICE = 2500; // 0.0025 USDC per call
    uint16 internal constant FEE_BPS = 2000;

    Deploy internal script;
    Deploy.Deployment internal deployment;
    TestStablecoin internal usdc;
    RevenueSplitter internal splitter;
    ToolRegistry internal registry;
    CreditSystem internal credits;

    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal developer = makeAddr("developer");
    address internal payout = makeAddr("payout");
    address internal stranger = makeAddr("stranger");
    address internal user;
    uint256 internal userKey;

    function setUp() public virtual {
        vm.warp(START);
        (user, userKey) = makeAddrAndKey("user");
        usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        script = new Deploy();
        deployment = script.deploy(
            Deploy.Config({
                admin: admin,
                arbiter: admin,
                refundWindow: 600,
                token: address(usdc),
                treasury: treasury,
                platformFeeBps: FEE_BPS
            }),
            address(script)
        );
        splitter = RevenueSplitter(deployment.revenueSplitter);
        registry = ToolRegistry(deployment.toolRegistry);
        credits = CreditSystem(deployment.creditSystem);
        usdc.mint(user, 1_000_000e6);
        vm.startPrank(user);
        usdc.approve(address(registry), type(uint256).max);
        usdc.approve(address(credits), type(uint256).max);
        vm.stopPrank();
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
