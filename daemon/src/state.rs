//! Durable daemon state in sled (in progress).
