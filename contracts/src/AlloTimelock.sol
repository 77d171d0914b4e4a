// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @title AlloTimelock
/// @notice The governance timelock that owns the AIAllocator and executes AlloGovernor's proposals: OpenZeppelin's
///         TimelockController with no admin ever and a guardian that can cancel queued operations, except those
///         that change who guards.
/// @dev - No admin: the deployer is never an admin (constructor admin = address(0)); only the timelock itself may
///        grant roles, i.e. only a passed proposal. The deployer may name the governor once (`bindGovernor`), which
///        grants it the proposer and canceller roles; nothing else.
///      - Anyone may execute a ready operation (executor role open, as OpenZeppelin's Governor expects).
///      - The guardian holds the canceller role, so it can stop a passed proposal in its timelock window; but an
///        operation that calls `setGuardian` on any target, or `grantRole`/`revokeRole` on this timelock, is
///        guarded: only the governor can cancel it, so a hostile guardian cannot block its own replacement.
contract AlloTimelock is TimelockController {
    /// @notice Whether the governor has been named.
    bool public governorBound;
    /// @notice Operations the guardian cannot cancel (they change who guards).
    mapping(bytes32 => bool) public guarded;

    address private immutable _creator;

    /// @dev `AIAllocator.setGuardian(address)`.
    bytes4 private constant SET_GUARDIAN = bytes4(keccak256("setGuardian(address)"));

    error NotCreator(address caller);
    error GovernorAlreadyBound();
    error GuardedOperation(bytes32 id);

    /// @param minDelay Seconds between queueing and executing an operation.
    /// @param guardian May cancel queued operations that do not change who guards.
    constructor(uint256 minDelay, address guardian)
        TimelockController(minDelay, new address[](0), _anyone(), address(0))
    {
        _creator = msg.sender;
        _grantRole(CANCELLER_ROLE, guardian);
    }

    /// @notice Names the governor (proposer and canceller), once, by the deployer.
    function bindGovernor(address governor) external {
        if (msg.sender != _creator) revert NotCreator(msg.sender);
        if (governorBound) revert GovernorAlreadyBound();
        governorBound = true;
        _grantRole(PROPOSER_ROLE, governor);
        _grantRole(CANCELLER_ROLE, governor);
    }

    /// @inheritdoc TimelockController
    function schedule(
        address target,
        uint256 value,
        bytes calldata data,
        bytes32 predecessor,
        bytes32 salt,
        uint256 delay
    ) public override {
        super.schedule(target, value, data, predecessor, salt, delay);
        if (_changesGuard(target, data)) guarded[hashOperation(target, value, data, predecessor, salt)] = true;
    }

    /// @inheritdoc TimelockController
    function scheduleBatch(
        address[] calldata targets,
        uint256[] calldata values,
        bytes[] calldata payloads,
        bytes32 predecessor,
        bytes32 salt,
        uint256 delay
    ) public override {
        super.scheduleBatch(targets, values, payloads, predecessor, salt, delay);
        for (uint256 i = 0; i < targets.length; ++i) {
            if (_changesGuard(targets[i], payloads[i])) {
                guarded[hashOperationBatch(targets, values, payloads, predecessor, salt)] = true;
                break;
            }
        }
    }

    /// @notice Cancels a queued operation. Cancellers only; a guarded one only by the governor (proposer).
    function cancel(bytes32 id) public override {
        if (guarded[id] && !hasRole(PROPOSER_ROLE, msg.sender)) revert GuardedOperation(id);
        super.cancel(id);
    }

    function _changesGuard(address target, bytes calldata data) private view returns (bool) {
        if (data.length < 4) return false;
        bytes4 s = bytes4(data[:4]);
        if (s == SET_GUARDIAN) return true;
        return target == address(this)
            && (s == IAccessControl.grantRole.selector || s == IAccessControl.revokeRole.selector);
    }

    function _anyone() private pure returns (address[] memory a) {
        a = new address[](1);
    }
}
