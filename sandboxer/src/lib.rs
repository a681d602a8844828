//! # crius-sandboxer
//! Owns each pod: netns, CNI, pause container, pod state on disk. (Face documented here once written.)
