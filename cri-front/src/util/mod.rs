//! Small helpers more than one part of criusd needs, each in one place.

pub mod phases;
pub mod time;
