// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice TEST ONLY. An ERC-20 that, once armed, calls back into `target` with `data` on every
///         balance update (transfer, mint, burn) and bubbles up that call's revert. Used as the
///         AIAllocator's asset to check that a payout cannot re-enter the allocator: the
///         allocator's ReentrancyGuardReentrantCall() revert propagates out of the payout.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public data;
    bool public armed;
    bool private _attacking;

    /// @param holder Receives the whole supply.
    /// @param supply Total supply (18 decimals).
    constructor(address holder, uint256 supply) ERC20("Reentrant", "RE") {
        _mint(holder, supply);
    }

    /// @notice Arms the attack: every later balance update calls `target_` with `data_`.
    /// @param target_ Contract to call back into.
    /// @param data_ Calldata of the callback.
    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
        armed = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && !_attacking) {
            _attacking = true;
            (bool ok, bytes memory ret) = target.call(data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 32), mload(ret))
                }
            }
            _attacking = false;
        }
    }
}
