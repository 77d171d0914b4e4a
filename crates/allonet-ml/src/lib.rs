//! # allonet-ml
//!
//! Funding recommendations a DAO can defend: random forests of CART regression trees with
//! scikit-learn's parameters, out-of-bag and cross-validated accuracy, impurity and permutation
//! importances, exact path-dependent TreeSHAP explanations, quantile-regression-forest intervals, and
//! versioned model files whose id is their digest.
//!
//! Everything is deterministic: the same data, parameters and seed give the same model, bit for bit,
//! whatever the number of threads (each tree draws from its own ChaCha stream).
pub mod data;
pub mod eval;
pub mod forest;
pub mod model;
pub mod shap;
pub mod synth;
pub mod tree;
