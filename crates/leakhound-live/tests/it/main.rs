//! The integration tests of leakhound-live: one test binary, one module per feature.

mod load;
