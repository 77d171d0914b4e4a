//! # allonet-flow
//!
//! Allocation networks ("AlloNets"): allocators wired into a graph through which funds flow hop by hop
//! (splits, dependency weights, QF pools, retro rounds, votes), propagated with exact integer
//! conservation, simulated over time in the cadCAD mould, and fitted to human pairwise judgements.
pub mod fit;
pub mod graph;
pub mod model;
pub mod propagate;
pub mod sim;
