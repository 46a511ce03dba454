//! ContextGuard's pure analysis: drift of code between two versions (line diff) and drift of a
//! conversation away from its running topic.
