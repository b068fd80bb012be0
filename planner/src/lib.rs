//! writ planner library: config, templates, plan rendering, diff and signing.
