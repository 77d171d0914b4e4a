// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// Compiles OpenZeppelin's TimelockController so it is emitted as the artifact
// "TimelockController": the governance timelock that owns the AIAllocator and executes
// AlloGovernor's proposals. Constructor: (uint256 minDelay, address[] proposers,
// address[] executors, address admin).
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
