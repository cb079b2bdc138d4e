//! The arena game rules (components, systems, `install`). Being written.
