//! The artifact's batch-decision generators (spec §9.2): clockwork and tf_serve.
