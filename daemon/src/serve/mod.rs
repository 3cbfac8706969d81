//! HTTP serving of the published trees (in progress).
