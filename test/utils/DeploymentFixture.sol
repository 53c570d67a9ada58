// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";
import {Deploy} from "../../script/Deploy.s.sol";
import {Test} from "forge-std/Test.sol";

/// @notice Every contract deployed and wired by script/Deploy.s.sol itself, so tests exercise the production
/// wiring, with a TestStablecoin this test contract owns. The product fixtures build on it.
abstract contract DeploymentFixture is Test {
    uint256 internal constant START = 1_700_000_000;

    Deploy internal script;
    Deploy.Deployment internal deployment;
    TestStablecoin internal usdc;

    address internal admin = makeAddr("admin");
    address internal stranger = makeAddr("stranger");

    /// @dev Warps to START and deploys the token and every contract, with `admin` as admin and arbiter.
    function deployStack(address treasury, uint16 platformFeeBps) internal {
        vm.warp(START);
        usdc = new TestStablecoin("USDC", "USDC", "2", address(this));
        script = new Deploy();
        deployment = script.deploy(
            Deploy.Config({
                admin: admin,
                arbiter: admin,
                refundWindow: 600,
                token: address(usdc),
                treasury: treasury,
                platformFeeBps: platformFeeBps
            }),
            address(script)
        );
    }

    /// @dev Mints 1,000,000 USDC to `account` and approves `first` and `second` to pull it without limit.
    function fundAndApprove(address account, address first, address second) internal {
        usdc.mint(account, 1_000_000e6);
        vm.startPrank(account);
        usdc.approve(first, type(uint256).max);
        usdc.approve(second, type(uint256).max);
        vm.stopPrank();
    }
}
