// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReentrantReceiver
/// @notice TEST ONLY. A contract that, once armed, calls `target` with `data` whenever it
///         receives native token, bubbling up that call's revert. Used as a recipient (and,
///         through `call`, as the agent) of a native-token AIAllocator to check that a payout
///         cannot re-enter the allocator.
contract ReentrantReceiver {
    address public target;
    bytes public data;
    bool public armed;
    bool private _attacking;

    /// @notice Arms the attack: every later native-token receipt calls `target_` with `data_`.
    /// @param target_ Contract to call back into.
    /// @param data_ Calldata of the callback.
    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
        armed = true;
    }

    /// @notice Forwards a call (with any attached value) from this contract, bubbling reverts;
    ///         lets a test make this contract the allocator's agent.
    /// @param target_ Contract to call.
    /// @param data_ Calldata.
    /// @return ret The call's return data.
    function call(address target_, bytes calldata data_) external payable returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target_.call{value: msg.value}(data_);
        if (!ok) _bubble(ret);
    }

    /// @notice On native-token receipt, runs the armed callback (once, not recursively).
    receive() external payable {
        if (armed && !_attacking) {
            _attacking = true;
            (bool ok, bytes memory ret) = target.call(data);
            if (!ok) _bubble(ret);
            _attacking = false;
        }
    }

    function _bubble(bytes memory ret) private pure {
        assembly ("memory-safe") {
            revert(add(ret, 32), mload(ret))
        }
    }
}
