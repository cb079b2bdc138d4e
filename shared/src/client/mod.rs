//! The sans-IO client core. Being written.
